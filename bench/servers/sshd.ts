import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { openSync, closeSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchKeys } from '../keys.js';
import { writeAuthorizedKeys } from '../keys.js';
import { onCleanup, stopTree } from '../cleanup.js';
import { processTree } from '../procfs.js';
import { treeCpuMeter } from '../cpuMeter.js';
import type { LoginUser } from './loginUser.js';
import type { BenchServer } from './types.js';
import { freePort, waitForLog } from './wait.js';

export const SSHD = '/usr/sbin/sshd';

/**
 * A private sshd: its own config, keys, PidFile and log in dir; not handicapped
 * (MaxStartups/MaxSessions raised, no PAM, no DNS, no motd/lastlog).
 */
export function sshdConfig(dir: string, port: number, keys: BenchKeys, user: LoginUser): string {
  return [
    `ListenAddress 127.0.0.1:${port}`,
    ...keys.hostKeys.map((k) => `HostKey ${k}`),
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    // the temp dir sits in world-writable /tmp, which StrictModes would reject
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'PermitRootLogin prohibit-password',
    `AllowUsers ${user.name}`,
    'AcceptEnv RD_*',
    'MaxStartups 2000',
    'MaxSessions 1000',
    'LoginGraceTime 60',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    // old JSch (Rundeck <= 5.9) needs ssh-rsa host key and user signatures, as execgate allows
    'HostKeyAlgorithms +ssh-rsa',
    'PubkeyAcceptedAlgorithms +ssh-rsa',
    'Subsystem sftp internal-sftp',
    'LogLevel INFO',
    '',
  ].join('\n');
}

export function sshdVersion(): string {
  // sshd -V prints its version on stderr (older releases exit non-zero)
  const r = spawnSync(SSHD, ['-V'], { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n')[0] || 'unknown';
}

export async function startSshd(dir: string, keys: BenchKeys, user: LoginUser): Promise<BenchServer> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: apt-get install openssh-server`);
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 }); // privilege separation directory
  writeAuthorizedKeys(join(dir, 'authorized_keys'), keys);
  let lastError: Error | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const configPath = join(dir, 'sshd_config');
    writeFileSync(configPath, sshdConfig(dir, port, keys, user));
    execFileSync(SSHD, ['-t', '-f', configPath]);
    const logPath = join(dir, `sshd-${attempt}.log`);
    const logFd = openSync(logPath, 'a');
    // -D: stay in the foreground (so the PID is ours); -e: log to stderr (the file)
    const proc = spawn(SSHD, ['-D', '-e', '-f', configPath], {
      stdio: ['ignore', logFd, logFd],
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' },
    });
    closeSync(logFd);
    const pid = proc.pid;
    if (pid === undefined) throw new Error('could not start sshd');
    onCleanup('stop sshd', () => stopTree(pid));
    try {
      await waitForLog(logPath, /Server listening on 127\.0\.0\.1 port (\d+)/, proc);
    } catch (err) {
      lastError = err as Error;
      await stopTree(pid);
      continue;
    }
    const sshdProcs = () => processTree(pid).filter((p) => p.comm === 'sshd');
    return {
      name: 'sshd',
      port,
      pid,
      user: user.name,
      serverPids: () => sshdProcs().map((p) => p.pid),
      connectionProcesses: () => sshdProcs().length - 1,
      cpuMeter: () => treeCpuMeter(pid, 'sshd'),
      stop: () => stopTree(pid),
    };
  }
  throw lastError ?? new Error('sshd did not start');
}
