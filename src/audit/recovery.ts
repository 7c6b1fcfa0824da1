import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEndRecord, AuditLog, AuditStartRecord } from './auditLog.js';
import { findOpenStarts } from './tail.js';
import { bootId, isLiveGateway, processAlive, processCgroup, processStartTicks } from './procIdentity.js';
import { processGroupMembers } from '../exec/processGroup.js';
import { isoTime } from '../time.js';

/**
 * Startup recovery: what a gateway killed with SIGKILL (OOM killer, watchdog, kill -9)
 * left behind. Runs once, before the gateway listens:
 *  1. command cgroups of dead gateways (`execgate-<pid>/cmd-*`, or `cmd-<pid>-*` under
 *     $EXECGATE_CGROUP_PARENT) are killed (cgroup.kill, else SIGKILL to each member),
 *     waited for until empty, and removed;
 *  2. start records without an end record whose gateway is not a live execgate get
 *     their process killed (only when provably the same process) and an end record
 *     with "result":"lost" and the reason.
 */

export interface RecoveryLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RecoveryReport {
  /** Stale command cgroups found (and emptied). */
  cgroups: number;
  /** Processes killed in them and through lost records. */
  killed: number;
  /** End records written with result "lost". */
  lost: AuditEndRecord[];
  /** Open records of other live gateways sharing this audit file (left alone). */
  otherLive: AuditStartRecord[];
  bytesRead: number;
  ms: number;
}

const EMPTY_WAIT_MS = 5000;

function cgroup2Mount(): string | null {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (left && right && right.split(' ')[0] === 'cgroup2') return left.split(' ')[4] ?? null;
    }
  } catch {
    // not Linux
  }
  return null;
}

function procs(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Live (non-zombie) members: zombies wait for a reaper that may never come (PID 1 in containers). */
function liveProcs(dir: string): number[] {
  return procs(dir).filter(processAlive);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kills every process in one cgroup (cgroup.kill where the kernel has it, else freeze,
 * SIGKILL each member, thaw), waits until none is alive and removes the directory
 * (and its child cgroups first). Returns how many processes it killed.
 */
export async function sweepCgroup(dir: string, waitMs = EMPTY_WAIT_MS): Promise<number> {
  let killed = 0;
  let children: string[];
  try {
    children = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(dir, d.name));
  } catch {
    return 0;
  }
  for (const child of children) killed += await sweepCgroup(child, waitMs);
  const before = liveProcs(dir);
  if (before.length > 0) {
    killed += before.length;
    let viaKillFile = false;
    if (existsSync(join(dir, 'cgroup.kill'))) {
      try {
        writeFileSync(join(dir, 'cgroup.kill'), '1');
        viaKillFile = true;
      } catch {
        // fall back below
      }
    }
    if (!viaKillFile) {
      const freeze = (v: string) => {
        try {
          writeFileSync(join(dir, 'cgroup.freeze'), v);
        } catch {
          // no freezer
        }
      };
      freeze('1');
      for (const pid of procs(dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      freeze('0');
    }
    const deadline = Date.now() + waitMs;
    while (liveProcs(dir).length > 0 && Date.now() < deadline) await sleep(10);
  }
  // rmdir fails while zombies are still members (EBUSY); the removal is retried by the next start.
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code !== 'EBUSY') break;
      await sleep(10);
    }
  }
  return killed;
}

/**
 * The command cgroups left by gateways that are gone. A directory named for this
 * process's own pid counts as stale too (a restart in a container gets the same pid):
 * recovery runs before this gateway starts any command, but its own parent directory
 * is only emptied, never removed (the cgroup code may have created it).
 */
export function staleCgroups(): { dir: string }[] {
  const out: { dir: string }[] = [];
  const configured = process.env.EXECGATE_CGROUP_PARENT;
  if (configured === 'off') return out;
  const stale = (pid: number) => pid === process.pid || !isLiveGateway(pid);
  const list = (dir: string) => {
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      return [];
    }
  };
  if (configured) {
    for (const name of list(configured)) {
      const m = /^cmd-(\d+)-\d+$/.exec(name);
      if (m && stale(Number(m[1]))) out.push({ dir: join(configured, name) });
    }
    return out;
  }
  const mount = cgroup2Mount();
  const own = processCgroup(process.pid);
  if (!mount || own === null) return out;
  const base = join(mount, own);
  for (const name of list(base)) {
    const m = /^execgate-(\d+)$/.exec(name);
    if (!m || !stale(Number(m[1]))) continue;
    const dir = join(base, name);
    if (Number(m[1]) === process.pid) {
      for (const child of list(dir)) out.push({ dir: join(dir, child) });
    } else {
      out.push({ dir });
    }
  }
  return out;
}

/** Is pid still the process a start record names? Same boot and start ticks, else still in its cgroup. */
function sameProcess(r: AuditStartRecord, currentBoot: string | null): boolean {
  if (r.pid === null || !processAlive(r.pid)) return false;
  if (r.bootId && currentBoot && r.bootId !== currentBoot) return false;
  if (typeof r.pidStartTicks === 'number') return processStartTicks(r.pid) === r.pidStartTicks;
  if (r.cgroup) {
    const cg = processCgroup(r.pid);
    return cg !== null && cg !== '/' && r.cgroup.endsWith(cg);
  }
  return false; // no way to tell: never kill a stranger
}

/** SIGKILLs the process group of a verified command pid (and the pid); returns how many died. */
async function killGroup(pid: number): Promise<number> {
  const members = new Set([pid, ...processGroupMembers(pid)]);
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // not a group leader
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  const deadline = Date.now() + EMPTY_WAIT_MS;
  while ([...members].some(processAlive) && Date.now() < deadline) await sleep(10);
  return members.size;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** Runs the startup recovery against this gateway's audit log (opened, nothing written yet). */
export async function recoverPreviousRun(audit: AuditLog, log?: RecoveryLog): Promise<RecoveryReport> {
  const t0 = performance.now();
  const scan = await findOpenStarts(audit.path);
  const otherLive: AuditStartRecord[] = [];
  const dead: AuditStartRecord[] = [];
  for (const r of scan.open.values()) {
    if (r.gatewayPid !== process.pid && isLiveGateway(r.gatewayPid)) otherLive.push(r);
    else dead.push(r);
  }
  // 1. cgroups of dead gateways, whatever the audit file says.
  const killedIn = new Map<string, number>();
  let killed = 0;
  const stale = staleCgroups();
  for (const { dir } of stale) {
    // Counted per command cgroup so each lost record can say what was killed.
    let sub: string[] = [];
    try {
      sub = readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(dir, d.name));
    } catch {
      // gone meanwhile
    }
    for (const s of sub) {
      const n = await sweepCgroup(s);
      killedIn.set(s, n);
      killed += n;
    }
    const n = await sweepCgroup(dir);
    killedIn.set(dir, (killedIn.get(dir) ?? 0) + n);
    killed += n;
  }
  // 2. lost records.
  const boot = bootId();
  const lost: AuditEndRecord[] = [];
  for (const r of dead) {
    let leftovers = r.cgroup ? (killedIn.get(r.cgroup) ?? 0) : 0;
    let extra = 0;
    if (r.cgroup && !killedIn.has(r.cgroup) && existsSync(r.cgroup)) extra += await sweepCgroup(r.cgroup);
    let note = '';
    if (r.pid !== null && processAlive(r.pid)) {
      if (sameProcess(r, boot)) extra += await killGroup(r.pid);
      else note = `; pid ${r.pid} is now another process, left alone`;
    }
    leftovers += extra;
    killed += extra;
    const now = Date.now();
    const startedAt = Date.parse(r.start);
    const record: AuditEndRecord = {
      time: isoTime(now),
      event: 'end',
      node: r.node,
      execId: r.execId,
      gatewayPid: r.gatewayPid,
      user: r.user,
      account: r.account,
      uid: r.uid,
      keyFingerprint: r.keyFingerprint,
      client: r.client,
      command: r.command,
      rdJobExecId: r.rdJobExecId,
      token: r.token,
      start: r.start,
      end: isoTime(now),
      durationMs: Number.isFinite(startedAt) ? Math.max(0, now - startedAt) : 0,
      result: 'lost',
      exitStatus: null,
      exitCode: null,
      signal: leftovers > 0 ? 'KILL' : null,
      killReason: leftovers > 0 ? 'gateway restart: leftovers of a dead gateway' : null,
      leftoverKilled: leftovers,
      bytesOut: null,
      reason: `gateway exited (pid ${r.gatewayPid}) while the command ran; ${plural(leftovers, 'leftover process', 'leftover processes')} killed at restart (pid ${process.pid})${note}`,
    };
    lost.push(record);
    // A failed write is kept by the log and written when it recovers; meanwhile commands are refused.
    await audit.write(record).catch((err: Error) => log?.warn({ execId: r.execId, err: err.message }, 'audit write of a lost record failed; kept for the retry'));
  }
  // Every later scan stops here: this marker lists what is still open (normally nothing).
  await audit.mark('open', 'start', otherLive).catch((err: Error) => log?.warn({ err: err.message }, 'audit log not writable at start: commands are refused until it is'));
  const report: RecoveryReport = { cgroups: stale.length, killed, lost, otherLive, bytesRead: scan.bytesRead, ms: Math.round(performance.now() - t0) };
  if (lost.length || killed || stale.length) {
    log?.warn(
      { lost: lost.map((r) => r.execId), killed, cgroups: stale.length, bytesRead: scan.bytesRead, ms: report.ms },
      'recovered what a previous gateway left: leftover processes killed, its open audit records ended with result "lost"',
    );
  } else {
    log?.info({ bytesRead: scan.bytesRead, ms: report.ms }, 'audit recovery: nothing left by a previous run');
  }
  if (otherLive.length) {
    log?.warn({ gatewayPids: [...new Set(otherLive.map((r) => r.gatewayPid))], path: audit.path }, 'another running execgate writes this audit file: give each gateway its own audit.path');
  }
  return report;
}
