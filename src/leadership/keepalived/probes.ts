import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Cluster } from '../../config/cluster.js';

/**
 * What execgate reads of keepalived on this host: whether the VIP is on the interface,
 * whether keepalived (and its VRRP child) is alive, and for how long.
 */
/** Probes of the host; replaced in unit tests. */
export interface VrrpProbes {
  vipLocal(): boolean;
  /** The live keepalived pid (null when not running). */
  keepalivedPid(): number | null;
  /** How long that process has been running (ms), if known. */
  processAgeMs(pid: number): number | null;
}

const CLK_TCK = 100;

function procStat(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    return [comm, ...fields];
  } catch {
    return null;
  }
}

/** A pid file naming a live (not zombie) keepalived process. */
export function liveKeepalived(pidFile: string): number | null {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const stat = procStat(pid);
  if (!stat) return null;
  const [comm, state] = stat;
  if (state === 'Z' || state === 'X' || state === 'x') return null;
  if (comm !== 'keepalived') return null; // pid reused by something else
  return pid;
}

/** The probes of this host, from the cluster file. */
export function hostProbes(cluster: Cluster): VrrpProbes {
  const { address, interface: ifname } = cluster.vip;
  const { keepalivedPidFile, keepalivedVrrpPidFile } = cluster.vrrp;
  return {
    vipLocal: () => (networkInterfaces()[ifname] ?? []).some((a) => a.family === 'IPv4' && a.address === address),
    keepalivedPid: () => {
      const pid = liveKeepalived(keepalivedPidFile);
      if (pid === null) return null;
      if (keepalivedVrrpPidFile && liveKeepalived(keepalivedVrrpPidFile) === null) return null;
      return pid;
    },
    processAgeMs: (pid) => {
      const stat = procStat(pid);
      if (!stat) return null;
      try {
        const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
        const startTicks = Number(stat[20]); // field 22 of /proc/PID/stat (comm is our [0], state [1])
        return Math.max(0, uptime * 1000 - (startTicks / CLK_TCK) * 1000);
      } catch {
        return null;
      }
    },
  };
}
