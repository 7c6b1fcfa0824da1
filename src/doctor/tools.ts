import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ToolResult {
  /** null: the tool is not installed. */
  ok: boolean | null;
  detail: string;
}

function which(binary: string, dirs = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin']): string | null {
  if (binary.startsWith('/')) return existsSync(binary) ? binary : null;
  for (const d of dirs) if (existsSync(join(d, binary))) return join(d, binary);
  return null;
}

function withTempFile<T>(name: string, text: string, fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-doctor-'));
  try {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o644 });
    return fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstLines(s: string, n = 3): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, n)
    .join(' | ');
}

/**
 * `keepalived -t -e -f FILE`: 0 valid, 5 invalid, 4 missing (without -e a missing or
 * empty file passes). keepalived 2.2.7 kills itself with SIGTERM during -t whenever
 * script_user is not root (its config test never sets main_pid; fixed upstream in
 * keepalived PR #2180). Then the same text is tested again with "script_user root",
 * which still checks everything else, script security included.
 */
export function keepalivedCheck(text: string, binary = 'keepalived'): ToolResult {
  const bin = which(binary);
  if (!bin) return { ok: null, detail: 'keepalived is not installed here' };
  const run = (t: string) => withTempFile('keepalived.conf', t, (path) => spawnSync(bin, ['-t', '-e', '-f', path], { encoding: 'utf8', timeout: 30_000 }));
  let r = run(text);
  let note = '';
  if (r.signal === 'SIGTERM' || r.status === 143) {
    r = run(text.replace(/^(\s*script_user)\s+\S+.*$/m, '$1 root'));
    note = ' (re-tested with script_user root: keepalived 2.2.7 -t terminates itself with any other script_user)';
  }
  const out = firstLines(`${r.stderr ?? ''}\n${r.stdout ?? ''}`);
  if (r.status === 0) return { ok: true, detail: `keepalived -t -e: valid${note}` };
  return { ok: false, detail: `keepalived -t -e exited ${r.status ?? r.signal}${note}: ${out}` };
}

/** python3 attaches the socket filter that holds new VIP connections during a drain (ssh/synHold.ts). */
export function vipHoldCheck(binary = 'python3'): ToolResult {
  const bin = which(binary);
  if (!bin) return { ok: false, detail: 'python3 is not installed: a drain cannot hold new connections on the VIP, so they are forwarded and cut at drainTimeoutSeconds' };
  return { ok: true, detail: `${bin} can hold new connections on the VIP during a drain` };
}

/** `haproxy -c -q -f FILE`: 0 valid, 1 invalid. */
export function haproxyCheck(text: string, binary = 'haproxy'): ToolResult {
  const bin = which(binary);
  if (!bin) return { ok: null, detail: 'haproxy is not installed here' };
  const r = withTempFile('haproxy.cfg', text, (path) => spawnSync(bin, ['-c', '-q', '-f', path], { encoding: 'utf8', timeout: 30_000 }));
  if (r.status === 0) return { ok: true, detail: 'haproxy -c: valid' };
  return { ok: false, detail: `haproxy -c exited ${r.status ?? r.signal}: ${firstLines(`${r.stderr ?? ''}\n${r.stdout ?? ''}`)}` };
}
