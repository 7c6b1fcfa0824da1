import { spawn } from 'node:child_process';
import { openSync, closeSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BenchKeys } from '../keys.js';
import { writeAuthorizedKeys } from '../keys.js';
import { onCleanup, stopTree } from '../cleanup.js';
import { processCpuMeter } from '../cpuMeter.js';
import type { LoginUser } from './loginUser.js';
import type { BenchServer } from './types.js';
import { waitForLog } from './wait.js';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const CLI = join(ROOT, 'dist/src/cli.js');

/** Where startExecgate(dir) writes the gateway's log (pino JSON lines). */
export const execgateLog = (dir: string): string => join(dir, 'execgate.log');

export interface ExecgateOptions {
  /** Node options before the CLI, e.g. ['--require', preload]. */
  nodeArgs?: string[];
  /** Config keys added to (or replacing) the bench's, e.g. proxyProtocol. */
  config?: Record<string, unknown>;
}

/** Starts the built `execgate serve --config` on an ephemeral 127.0.0.1 port. */
export async function startExecgate(dir: string, keys: BenchKeys, user: LoginUser, options: ExecgateOptions = {}): Promise<BenchServer> {
  const authorizedKeys = join(dir, 'authorized_keys');
  writeAuthorizedKeys(authorizedKeys, keys);
  const config = {
    node: 'bench',
    listen: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    hostKeys: keys.hostKeys,
    authorizedKeys,
    ...(user.dedicated ? { runAs: { user: user.name } } : {}),
    limits: { maxConnections: 4000 },
    audit: { path: join(dir, 'audit.jsonl') },
    ...options.config,
  };
  // JSON is YAML: no serializer needed.
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const logPath = execgateLog(dir);
  const logFd = openSync(logPath, 'a');
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'serve', '--config', configPath], {
    stdio: ['ignore', logFd, logFd],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  closeSync(logFd);
  const pid = proc.pid;
  if (pid === undefined) throw new Error('could not start execgate');
  // once only: a second stop after an early one could hit a reused PID
  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= stopTree(pid, 10_000));
  onCleanup('stop execgate', stop);
  const m = await waitForLog(logPath, /"listen":"127\.0\.0\.1:(\d+)"/, proc);
  const port = Number(m[1]);

  return {
    name: 'execgate',
    port,
    pid,
    user: user.name,
    serverPids: () => [pid],
    connectionProcesses: () => 0,
    cpuMeter: () => processCpuMeter(pid),
    stop,
  };
}
