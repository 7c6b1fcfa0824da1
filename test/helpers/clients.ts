import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ROOT } from './gateway.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  stderrBytes: Buffer;
}

export function sshArgs(port: number, key: string, extra: string[] = []): string[] {
  return [
    '-i', key,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=10',
    '-p', String(port),
    ...extra,
  ];
}

/** Runs a process to completion, collecting stdout as bytes. */
export function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: Buffer | string } = {}): Promise<RunResult> & { child: ChildProcess } {
  const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  child.stderr!.on('data', (d: Buffer) => errChunks.push(d));
  child.stdin!.on('error', () => {});
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const promise = new Promise<RunResult>((resolve) =>
    child.once('close', (code, signal) => {
      const stderrBytes = Buffer.concat(errChunks);
      resolve({ code, signal, stdout: Buffer.concat(chunks), stderr: stderrBytes.toString(), stderrBytes });
    }),
  ) as Promise<RunResult> & { child: ChildProcess };
  promise.child = child;
  return promise;
}

/** The real OpenSSH client against a gateway on loopback. */
export function ssh(port: number, key: string, command: string, options: { extra?: string[]; env?: NodeJS.ProcessEnv; input?: Buffer | string; user?: string } = {}) {
  const user = options.user ?? 'root';
  return run('ssh', [...sshArgs(port, key, options.extra), `${user}@127.0.0.1`, command], options);
}

const JSCH_JAR = '/usr/share/java/jsch.jar';
const JSCH_BUILD = join(tmpdir(), 'execgate-jsch-build');

/** Compiles test/jsch/RundeckStep.java once per machine (javac against Debian's JSch). */
export function jschClasspath(): string {
  if (!existsSync(JSCH_JAR)) throw new Error(`${JSCH_JAR} is missing: apt-get install libjsch-java (.ci/install-debian-packages does)`);
  if (!existsSync(join(JSCH_BUILD, 'RundeckStep.class'))) {
    mkdirSync(JSCH_BUILD, { recursive: true });
    execFileSync('javac', ['-cp', JSCH_JAR, '-d', JSCH_BUILD, join(ROOT, 'test/jsch/RundeckStep.java')]);
  }
  return `${JSCH_JAR}:${JSCH_BUILD}`;
}

export interface JschOp {
  op: string;
  exit?: number;
  stdout?: string;
  stderr?: string;
  command?: string;
  path?: string;
  message?: string;
}

/** Runs the Rundeck-like JSch harness; returns its JSON lines. */
export async function jsch(args: string[]): Promise<{ code: number | null; ops: JschOp[]; stderr: string }> {
  const result = await run('java', ['-cp', jschClasspath(), 'RundeckStep', ...args]);
  const ops = result.stdout
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JschOp);
  return { code: result.code, ops, stderr: result.stderr };
}
