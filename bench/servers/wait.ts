import { readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { sleep } from '../cleanup.js';

/** Polls a log file until the pattern appears; fails early if the process exits. */
export async function waitForLog(path: string, pattern: RegExp, proc: ChildProcess, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const m = text.match(pattern);
    if (m) return m;
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`process ${proc.pid} exited (${proc.exitCode ?? proc.signalCode}) before ${pattern}; log ${path}:\n${text.slice(-2000)}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in ${path}:\n${text.slice(-2000)}`);
    await sleep(50);
  }
}

/** A currently free TCP port on 127.0.0.1 (for servers that cannot report their own). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
