import { readdirSync, readFileSync } from 'node:fs';

/** What /proc/PID/stat tells us about one process (fields after the command name). */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** utime + stime, in clock ticks (USER_HZ, 100 on Linux). */
  selfTicks: number;
  /** cutime + cstime: CPU of children this process has waited for. */
  childTicks: number;
}

export const CLOCK_TICKS_PER_SECOND = 100;

export function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  // f[0] = state (field 3); utime is field 14 => f[11]
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: f[0] ?? '?',
    ppid: Number(f[1]),
    selfTicks: Number(f[11]) + Number(f[12]),
    childTicks: Number(f[13]) + Number(f[14]),
  };
}

export function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(Number(entry));
    if (s) out.push(s);
  }
  return out;
}

/** The process and all its descendants; zombies (exited, not yet reaped) only when asked. */
export function processTree(rootPid: number, includeZombies = false): ProcStat[] {
  const procs = allProcesses().filter((p) => includeZombies || p.state !== 'Z');
  const byParent = new Map<number, ProcStat[]>();
  for (const p of procs) {
    const list = byParent.get(p.ppid) ?? [];
    list.push(p);
    byParent.set(p.ppid, list);
  }
  const root = procs.find((p) => p.pid === rootPid);
  if (!root) return [];
  const out: ProcStat[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(byParent.get(p.pid) ?? []));
  }
  return out;
}

export interface Memory {
  rssKiB: number;
  pssKiB: number;
}

/** RSS and PSS from /proc/PID/smaps_rollup (zero when the process is gone). */
export function readMemory(pid: number): Memory {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
  } catch {
    return { rssKiB: 0, pssKiB: 0 };
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: field('Rss'), pssKiB: field('Pss') };
}

export function sumMemory(pids: readonly number[]): Memory & { processes: number } {
  let rssKiB = 0;
  let pssKiB = 0;
  for (const pid of pids) {
    const m = readMemory(pid);
    rssKiB += m.rssKiB;
    pssKiB += m.pssKiB;
  }
  return { rssKiB, pssKiB, processes: pids.length };
}

export function isAlive(pid: number): boolean {
  const s = readStat(pid);
  return s !== null && s.state !== 'Z';
}
