import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync, openSync, closeSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/src/cli.js');

export interface ClientKeys {
  ed25519: string;
  /** RSA in PEM ("BEGIN RSA PRIVATE KEY"), the only form old JSch reads. */
  rsaPem: string;
}

export interface TestGateway {
  dir: string;
  port: number;
  /** The HTTP surface's port (http.port 0 by default here); null with http.enabled: false. */
  httpPort: number | null;
  /** http://127.0.0.1:<httpPort>, or null. */
  httpUrl: string | null;
  keys: ClientKeys;
  auditPath: string;
  proc: ChildProcess;
  output: () => string;
  /** One record per command: its `end` line (docs/audit.md); `auditLines()` has every line. */
  audit: () => Array<Record<string, unknown>>;
  /** Every audit line: `start`, `end` and the `open`/`stop` markers. */
  auditLines: () => Array<Record<string, unknown>>;
  stop: () => Promise<void>;
}

export function makeClientKeys(dir: string): ClientKeys {
  const ed25519 = join(dir, 'id_ed25519');
  const rsaPem = join(dir, 'id_rsa');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ed25519]);
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-m', 'PEM', '-N', '', '-f', rsaPem]);
  return { ed25519, rsaPem };
}

/** Waits for a log line matching the predicate on the process's stdout/stderr. */
export function waitForOutput(proc: ChildProcess, buffer: () => string, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = buffer().match(pattern);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`process exited (${code}) before ${pattern}:\n${buffer()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${pattern}:\n${buffer()}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      proc.stdout?.off('data', check);
      proc.stderr?.off('data', check);
      proc.off('exit', onExit);
    };
    proc.stdout?.on('data', check);
    proc.stderr?.on('data', check);
    proc.once('exit', onExit);
    check();
  });
}

/** Starts a real `execgate serve --config` process on an ephemeral loopback port. */
export async function startTestGateway(
  overrides: Record<string, unknown> = {},
  nodeArgs: string[] = [],
  /** Hands the gateway an open descriptor at this number (not close-on-exec), as a careless parent would. */
  options: { inheritFd?: number } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-test-'));
  execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'host')]);
  const keys = makeClientKeys(dir);
  const authorizedKeys = join(dir, 'authorized_keys');
  // Mode 0600 whatever the umask: the gateway refuses a group/world-writable file (StrictModes).
  writeFileSync(authorizedKeys, readFileSync(`${keys.ed25519}.pub`, 'utf8') + readFileSync(`${keys.rsaPem}.pub`, 'utf8'), { mode: 0o600 });
  const auditPath = join(dir, 'audit.jsonl');
  const config = {
    node: 'gw-test',
    listen: { host: '127.0.0.1', port: 0 },
    hostKeys: [join(dir, 'host/ssh_host_ed25519_key'), join(dir, 'host/ssh_host_rsa_key')],
    authorizedKeys,
    audit: { path: auditPath },
    exec: { killGraceSeconds: 2 },
    ...overrides,
    // The suite connects as root (clients.ts) and CI runs as root: every username runs as
    // the account running the tests, root permitted. A test that sets runAs gets
    // permitRoot: true plus its own keys (runAs: {} is the identity model).
    runAs: overrides.runAs === undefined ? { user: userInfo().username, permitRoot: true } : { permitRoot: true, ...(overrides.runAs as Record<string, unknown>) },
    // An ephemeral HTTP port unless the test says otherwise (the default 9422 may be taken).
    http: { port: 0, ...(overrides.http as Record<string, unknown> | undefined) },
  };
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(config));
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
  const extraFd = options.inheritFd === undefined ? null : openSync('/dev/null', 'r');
  if (options.inheritFd !== undefined) while (stdio.length <= options.inheritFd) stdio.push(stdio.length === options.inheritFd ? extraFd! : 'ignore');
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--config', configPath], { stdio });
  if (extraFd !== null) closeSync(extraFd);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const output = () => out;
  const m = await waitForOutput(proc, output, /"listen":"127\.0\.0\.1:(\d+)"/);
  const port = Number(m[1]);
  const h = /"http":"[^"]*:(\d+)",[^\n]*"msg":"http listening"/.exec(out);
  const httpPort = h ? Number(h[1]) : null;
  const httpUrl = httpPort === null ? null : `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const auditLines = () =>
    existsSync(auditPath)
      ? readFileSync(auditPath, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  const audit = () => auditLines().filter((r) => r.event === 'end' || r.event === 'command');
  return { dir, port, httpPort, httpUrl, keys, auditPath, proc, output, audit, auditLines, stop };
}
