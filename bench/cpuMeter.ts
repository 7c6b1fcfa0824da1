import { CLOCK_TICKS_PER_SECOND, processTree, readStat } from './procfs.js';

/** Measures CPU time (utime + stime) spent by a server while it is running. */
export interface CpuMeter {
  /** CPU seconds spent since the meter started. */
  stop(): number;
}

/** One process (execgate: its Node process, all threads; not its children). */
export function processCpuMeter(pid: number): CpuMeter {
  const before = readStat(pid)?.selfTicks ?? 0;
  return { stop: () => ((readStat(pid)?.selfTicks ?? before) - before) / CLOCK_TICKS_PER_SECOND };
}

/**
 * Every process named `comm` in the tree below rootPid, including the ones that appear
 * and exit while the meter runs. A child's CPU is only added to its parent's cutime
 * when the parent reaps it, and sshd's per-connection session process is often not
 * reaped by sshd at all (it ends up a zombie under PID 1), so instead each process's
 * own utime+stime is followed by PID: discovered by a tree scan every 250 ms, read every
 * 50 ms, and read once more at the end (a zombie keeps its final figures).
 */
export function treeCpuMeter(rootPid: number, comm: string): CpuMeter {
  const baseline = new Map<number, number>();
  const last = new Map<number, number>();
  const scan = (first: boolean) => {
    for (const p of processTree(rootPid, true)) {
      if (p.comm !== comm) continue;
      if (!baseline.has(p.pid)) baseline.set(p.pid, first ? p.selfTicks : 0);
      last.set(p.pid, p.selfTicks);
    }
  };
  const readTracked = () => {
    for (const pid of last.keys()) {
      const s = readStat(pid);
      if (s && s.comm === comm) last.set(pid, s.selfTicks);
    }
  };
  scan(true);
  let n = 0;
  const timer = setInterval(() => (++n % 5 === 0 ? scan(false) : readTracked()), 50);
  return {
    stop: () => {
      clearInterval(timer);
      scan(false);
      readTracked();
      let ticks = 0;
      for (const [pid, end] of last) ticks += Math.max(0, end - (baseline.get(pid) ?? 0));
      return ticks / CLOCK_TICKS_PER_SECOND;
    },
  };
}
