import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * Who a pid is, from /proc: a pid number is reused, so a restart only kills a process
 * when it is provably the one a record names (same boot, same start time in clock
 * ticks, or still inside the command's cgroup).
 */

/** This boot's id (/proc/sys/kernel/random/boot_id); null where unavailable. */
export function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** Fields after "pid (comm) " of /proc/PID/stat; null when the process is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The process's start time in clock ticks since boot (field 22); null when it is gone. */
export function processStartTicks(pid: number): number | null {
  const f = statFields(pid);
  const v = f ? Number(f[19]) : NaN;
  return Number.isFinite(v) ? v : null;
}

/** Alive and not a zombie. */
export function processAlive(pid: number): boolean {
  const f = statFields(pid);
  return f !== null && f[0] !== 'Z' && f[0] !== 'X';
}

/** The process's cgroup v2 path ("0::/path"), or null. */
export function processCgroup(pid: number): string | null {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : null;
  } catch {
    return null;
  }
}

/** Is pid a running `execgate serve` (node .../cli.js serve, or an `execgate` launcher)? */
export function isLiveGateway(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return false;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  return argv.includes('serve') && argv.some((a) => a.endsWith('cli.js') || basename(a) === 'execgate');
}
