import { spawn } from 'node:child_process';
import type { BenchServer } from '../servers/types.js';

/** Flags both OpenSSH clients (ssh, scp) take: no user config, no multiplexing, no host key prompts. */
function clientOptions(key: string): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    key,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    'ControlMaster=no',
    '-o',
    'ControlPath=none',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=20',
  ];
}

/** OpenSSH client flags: no user config, no multiplexing, no host key prompts. */
export function sshArgs(server: BenchServer, key: string, extra: string[] = []): string[] {
  return [...clientOptions(key), '-T', '-p', String(server.port), ...extra, `${server.user}@127.0.0.1`];
}

/**
 * The same flags for scp (which spells the port -P, and whose -T means something else:
 * no strict file name checking), without the operands; see remotePath().
 */
export function scpArgs(server: BenchServer, key: string, extra: string[] = []): string[] {
  return [...clientOptions(key), '-P', String(server.port), ...extra];
}

/** An scp operand naming a path on the server. */
export const remotePath = (server: BenchServer, path: string): string => `${server.user}@127.0.0.1:${path}`;

export const clientEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', LANG: 'C.UTF-8' });

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to completion (killed after timeoutMs), with small stdout/stderr collected. */
export function runProcess(file: string, args: string[], timeoutMs: number): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: clientEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Number(process.hrtime.bigint() - start) / 1e6 });
    });
  });
}

/** POSIX shell quoting for one word. */
export const shq = (s: string): string => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** One connect + auth + exec + close with the OpenSSH client; ms, or null on failure. */
export async function opensshExec(server: BenchServer, key: string, command: string, extra: string[] = [], sshPath = 'ssh'): Promise<{ ms: number; ok: boolean; detail: string }> {
  const r = await runProcess(sshPath, [...sshArgs(server, key, extra), command], 30_000);
  return { ms: r.ms, ok: r.code === 0, detail: r.code === 0 ? '' : `exit ${r.code ?? r.signal}: ${r.stderr.trim()}` };
}
