import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { onCleanup, stopPid } from '../cleanup.js';
import { ROOT } from '../servers/execgate.js';
import type { BenchServer } from '../servers/types.js';

const JSCH_JAR = '/usr/share/java/jsch.jar';
const SOURCE = join(ROOT, 'test/jsch/RundeckStep.java');
// Our own build dir, so a concurrent test run compiling the harness is not disturbed.
const BUILD = join(tmpdir(), 'execgate-bench-jsch');

export function jschAvailable(): string | null {
  if (!existsSync(JSCH_JAR)) return `${JSCH_JAR} missing (apt-get install libjsch-java)`;
  if (!existsSync(SOURCE)) return `${SOURCE} missing`;
  try {
    execFileSync('javac', ['-version'], { stdio: 'ignore' });
  } catch {
    return 'javac missing (apt-get install default-jdk-headless)';
  }
  return null;
}

function classpath(): string {
  const cls = join(BUILD, 'RundeckStep.class');
  if (!existsSync(cls) || statSync(cls).mtimeMs < statSync(SOURCE).mtimeMs) {
    mkdirSync(BUILD, { recursive: true });
    execFileSync('javac', ['-cp', JSCH_JAR, '-d', BUILD, SOURCE]);
  }
  return `${JSCH_JAR}:${BUILD}`;
}

/**
 * One long-lived JVM running RundeckStep --mode server against one server, so JVM
 * start-up and class loading are not part of the measurement.
 */
export class JschDriver {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly pending: Array<(line: string) => void> = [];
  private stderr = '';

  constructor(server: BenchServer, rsaPemKey: string) {
    this.proc = spawn('java', [
      '-cp',
      classpath(),
      'RundeckStep',
      '--host',
      '127.0.0.1',
      '--port',
      String(server.port),
      '--user',
      server.user,
      '--key',
      rsaPemKey,
      '--node',
      'bench',
      '--connect-timeout',
      '20000',
      '--mode',
      'server',
    ]);
    const pid = this.proc.pid;
    if (pid !== undefined) onCleanup(`stop jsch (${server.name})`, () => this.stop());
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      this.pending.shift()?.(line);
    });
  }

  /** Runs one 4-connection script step; resolves with its wall time in ms. */
  step(script: string, execId: number, timeoutMs = 60_000): Promise<{ ms: number; ok: boolean; detail: string }> {
    const start = process.hrtime.bigint();
    const env = [`RD_JOB_EXECID=${execId}`, 'RD_JOB_ID=bench', 'RD_NODE_NAME=bench'];
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        resolve({ ms: timeoutMs, ok: false, detail: `timed out; jsch stderr: ${this.stderr}` });
        void this.stop();
      }, timeoutMs);
      this.pending.push((line) => {
        clearTimeout(timer);
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        const r = JSON.parse(line) as { ok: boolean; exit?: number; message?: string };
        const ok = r.ok && r.exit === 0;
        resolve({ ms, ok, detail: ok ? '' : (r.message ?? `script exit ${r.exit}`) });
      });
      this.proc.stdin.write(['step', String(execId), script, '', ...env].join('\t') + '\n');
    });
  }

  async stop(): Promise<void> {
    this.proc.stdin.end();
    if (this.proc.pid !== undefined) await stopPid(this.proc.pid, 2000);
  }
}
