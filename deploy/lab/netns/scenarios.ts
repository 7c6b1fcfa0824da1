import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FailoverLab } from './lab.js';
import type { Gateway } from './supervisor.js';
import type { Handover, Topology } from './topology.js';
import { sleep, until } from './wait.js';
import { DRAIN_LOADS, type DrainLoad, Workload, commandBody, newExecId, waitedForLead, type Execution, type WorkloadOptions } from './workload.js';
import { runChecks, splitBrainMs, type Check } from './checks.js';
import { etcdEndpoint } from './etcdAccess.js';
import { intruderAttacks } from './intruder.js';

export interface ScenarioResult {
  topology: Topology;
  scenario: string;
  repeat: number;
  /** leadership.handover of the run (null: vrrp, which has none). */
  handover: Handover | null;
  /** Fault (or quorum restored, for etcd-majority) to the first successful command; null: none within the wait. */
  failoverMs: number | null;
  /** Executions overlapping [fault, recovered] that failed, of how many. */
  failed: number;
  total: number;
  splitBrainMs: number;
  /** Pairs of runs on two nodes out of token order (VRRP only; etcd must have none). */
  overlaps: number;
  /** drain, rolling: the leader's drain request to the next node reporting leader; null: none, or not a drain. */
  handoffMs: number | null;
  /** Median duration of short commands before the fault (the baseline of waitedMs). */
  shortBaselineMs: number | null;
  /** Short commands started between the fault and recovery: duration minus the baseline (median, max; null: none). */
  waitedMedianMs: number | null;
  waitedMaxMs: number | null;
  /** How many short commands those two figures rest on. */
  waitedSamples: number;
  checks: Check[];
  notes: string[];
}

interface Ctx {
  lab: FailoverLab;
  wl: Workload;
  leader: Gateway;
  notes: string[];
  /** Measure recovery from here (default: the fault). */
  measureFrom?: number;
  /** The node whose successes do not count as a failover (default: the old leader). */
  faulted?: string | null;
  quiet: Array<{ from: number; to: number; why: string }>;
  extraChecks: Check[];
  /** When the leader's drain was requested (drain, rolling): the start of the handoff figure. */
  handoffFrom?: number;
  /** The leader drained at handoffFrom (default: the leader at the start). */
  handoffOf?: Gateway;
  /** When that leader reported drained: the end of the window a new command may have waited in. */
  drainedAt?: number;
  /** The drain workload's figures (drain, rolling). */
  drainLoad: DrainLoad;
}

interface Scenario {
  name: string;
  only?: Topology[];
  workload?: WorkloadOptions;
  /** Workload before the fault (default 1.5 s). */
  warmupMs?: number;
  /** Runs under the drain workload (its workload and warm-up replace the two above). */
  drainLoad?: boolean;
  /** A planned handover: under leadership.handover fast, admission order is checked instead of fencing order. */
  plannedHandover?: boolean;
  /** Nothing should move: no failover figure. */
  noFailover?: boolean;
  /** Injects the fault at `t` and returns once the fault is over (restores what it broke). */
  run(ctx: Ctx, t: number): Promise<void>;
}

const others = (lab: FailoverLab, g: Gateway) => lab.gateways.filter((x) => x !== g);

/** Waits for a success after `from` on another node than `not` (or any node when null). */
async function recovered(ctx: Ctx, from: number, not: string | null, timeoutMs = 15_000): Promise<boolean> {
  try {
    await until('recovery', () => ctx.wl.firstSuccess(from, not), timeoutMs, 50);
    return true;
  } catch {
    return false;
  }
}

const H = (lab: FailoverLab, f: string) => join(lab.hostDir, f);

/** Where the VIP was over the next `ms`, e.g. "gw1, none at 12 ms, gw2 at 30 ms". */
async function vipMoves(lab: FailoverLab, from: number, ms: number): Promise<string> {
  const seen: string[] = [];
  let last: string | null = null;
  while (Date.now() - from < ms) {
    const now = lab.vipHolders().join('+') || 'none';
    if (now !== last) seen.push(last === null ? now : `${now} at ${Date.now() - from} ms`);
    last = now;
    await sleep(5);
  }
  return seen.join(', ');
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'sigkill',
    async run(ctx, t) {
      ctx.lab.crashExecgate(ctx.leader);
      await recovered(ctx, t, ctx.leader.name);
      await sleep(1500);
    },
  },
  {
    name: 'host-loss',
    async run(ctx, t) {
      ctx.lab.loseHost(ctx.leader);
      await recovered(ctx, t, ctx.leader.name);
      await sleep(1000);
      await ctx.lab.restoreHost(ctx.leader);
      await sleep(1500);
    },
  },
  {
    // Honest "unhealthy, process alive": the audit log's file system is nearly full
    // (/healthz needs 64 MiB free); nothing is paused or killed.
    name: 'unhealthy',
    async run(ctx, t) {
      const { lab, leader } = ctx;
      lab.hostExec(leader.name, ['fallocate', '-l', '60M', H(lab, 'filler')]);
      ctx.notes.push('unhealthy = audit file system below the 64 MiB reserve (execgate alive, /healthz 503)');
      const ok = await recovered(ctx, t, leader.name, 8000);
      if (!ok) ctx.notes.push('no failover while unhealthy: the etcd leader keeps its lease (health does not reach leadership)');
      lab.hostExec(leader.name, ['rm', '-f', H(lab, 'filler')]);
      await sleep(3000);
    },
  },
  {
    // A planned drain under the drain workload: several long commands and a JSch step are
    // running when the drain starts, and the short-command stream never stops. The drained
    // leader waits for its longest command.
    name: 'drain',
    drainLoad: true,
    plannedHandover: true,
    async run(ctx, t) {
      const { lab, leader } = ctx;
      const tracks = lab.gateways.map((g) => `${g.name}=${lab.readHostFile(g.name, 'keepalived.track').trim()}`).join(' ');
      ctx.notes.push(`track files before: ${tracks}; ${lab.commandPids(leader).length} command processes on ${leader.name}`);
      ctx.handoffFrom = t;
      const r = await lab.drain(leader);
      if (r.status !== 200) ctx.notes.push(`drain answered ${r.status}`);
      if (lab.topology !== 'haproxy-etcd') ctx.notes.push(`VIP: ${await vipMoves(lab, t, 1500)}`);
      const { waitMs } = ctx.drainLoad;
      await recovered(ctx, t, leader.name, waitMs);
      await until(`${leader.name} drained`, async () => (await lab.drainPhase(leader)) === 'drained', waitMs, 100)
        .then(() => {
          ctx.drainedAt = Date.now();
          ctx.notes.push(`${leader.name} drained ${ctx.drainedAt - t} ms after the request`);
        })
        .catch(() => ctx.notes.push(`drain did not complete within ${waitMs / 1000} s`));
      await sleep(500);
      await lab.undrain(leader);
      await sleep(1500);
    },
  },
  {
    // Rundeck's dispatch scripts are replicated to the standbys: the step's chmod, exec and
    // rm after the failover succeed on the new leader.
    name: 'upload-exec',
    workload: { longEveryMs: 0, steps: false },
    async run(ctx, t) {
      const { lab, leader, wl } = ctx;
      const execid = newExecId(lab);
      const path = `/tmp/${1 + Math.floor(Math.random() * 9999)}-${execid}-gw-dispatch-script.tmp.sh`;
      const env = { RD_JOB_EXECID: execid };
      const up = (await lab.request({ op: 'scp', ...lab.target, path, content: `#!/bin/sh\n${commandBody(lab, 'true')}\n` })) as { code: number; error?: string };
      if (up.code !== 0) ctx.notes.push(`upload failed: ${up.error}`);
      ctx.measureFrom = Date.now();
      lab.crashExecgate(leader);
      await recovered(ctx, ctx.measureFrom, leader.name);
      const e: Execution = { execid, kind: 'manual', t0: Date.now(), t1: null, ok: null, node: null, token: null, code: null, detail: '' };
      wl.executions.push(e);
      const exec = (command: string) => lab.request({ op: 'exec', ...lab.target, command, env, timeoutMs: 15_000 }) as Promise<{ code: number | null; stdout: string; stderr: string; error?: string }>;
      const chmod = await exec(`chmod +x ${path}`);
      const run = await exec(path);
      const rm = await exec(`rm -f ${path}`);
      e.t1 = Date.now();
      e.code = run.code;
      const okLine = new RegExp(`(?:^|\\n)ok ${execid} (\\S+) (\\S+)`).exec(run.stdout ?? '');
      e.ok = run.code === 0 && okLine !== null;
      e.node = okLine?.[1] ?? null;
      e.token = okLine?.[2] ?? null;
      e.detail = `chmod ${chmod.code}; exec ${run.code}: ${run.stderr.trim()}; rm ${rm.code}`;
      const newLeader = lab.leader()?.name ?? 'none';
      const onNewLeader = e.node !== null && e.node !== leader.name && e.node === newLeader;
      type Answer = { code: number | null; stderr: string; error?: string | null };
      // One step's part: its exit, or why there was none, and its stderr unless an earlier part said the same.
      const seen = new Set<string>();
      const part = (name: string, r: Answer) => {
        const err = (r.stderr ?? '').trim().replace(/\s+/g, ' ').slice(0, 240);
        const why = r.code === null ? `no exit status (${r.error ?? 'no error'})` : `exit ${r.code}`;
        const say = err && !seen.has(err) ? `: ${err}` : '';
        if (err) seen.add(err);
        return `${name} ${why}${r.code === 0 ? '' : say}`;
      };
      const where = okLine ? `ran on ${e.node} (token ${e.token}) after ${leader.name} crashed; leader now ${newLeader}` : `no "ok ${execid}" line`;
      ctx.extraChecks.push({
        name: 'script step succeeds after a failover between upload and exec',
        ok: e.ok && onNewLeader && chmod.code === 0 && rm.code === 0,
        detail: `${part('chmod', chmod)}; ${part('exec', run)}, ${where}; ${part('rm', rm)}`,
      });
      void t;
      await sleep(1000);
    },
  },
  {
    name: 'partition',
    async run(ctx, t) {
      const { lab, leader } = ctx;
      lab.net.partition(
        leader.name,
        others(lab, leader).map((g) => g.name),
      );
      ctx.notes.push(`${leader.name} cut off from the other gateways; the client reaches all`);
      await recovered(ctx, t, leader.name, 8000);
      await sleep(Math.max(0, t + 5000 - Date.now()));
      const leadersAtHeal = lab.leaders();
      lab.net.heal();
      ctx.notes.push(`leaders just before healing: ${leadersAtHeal.join('+') || 'none'}`);
      await sleep(2500);
    },
  },
  {
    name: 'etcd-minority',
    only: ['vrrp-etcd', 'haproxy-etcd'],
    noFailover: true,
    async run(ctx) {
      const { lab, leader } = ctx;
      // A follower: losing etcd's raft leader costs an election (~1 s) during which
      // keepalives fail, which with a 2 s TTL can fence the gateway leader (measured).
      let victim = others(lab, leader)[0]!;
      for (const g of others(lab, leader)) {
        const r = await lab.etcdCall('/v3/maintenance/status', {}, { endpoints: [etcdEndpoint(g.address)] });
        try {
          const st = r.result as { header: { member_id: string }; leader: string };
          if (r.ok && st.leader !== st.header.member_id) {
            victim = g;
            break;
          }
        } catch {
          // keep the default
        }
      }
      ctx.notes.push(`etcd member on ${victim.name} (a raft follower) killed`);
      ctx.faulted = null;
      await lab.stopProc(victim.etcd, 'SIGKILL');
      await sleep(4000);
      const still = lab.leaders();
      ctx.extraChecks.push({ name: 'minority loss changes nothing', ok: still.length === 1 && still[0] === leader.name, detail: `leader during the loss: ${still.join('+') || 'none'}` });
      lab.startEtcd(victim);
      await sleep(1500);
    },
  },
  {
    name: 'etcd-majority',
    only: ['vrrp-etcd', 'haproxy-etcd'],
    async run(ctx, t) {
      const { lab, leader } = ctx;
      const victims = others(lab, leader);
      for (const v of victims) await lab.stopProc(v.etcd, 'SIGKILL');
      const fenced = await until('the leader to fence itself', () => leader.roles.find((r) => r.t >= t && r.role !== 'leader'), 10_000).catch(() => null);
      ctx.notes.push(fenced ? `${leader.name} ${fenced.role} ${fenced.t - t} ms after quorum loss` : `${leader.name} did not step down`);
      await sleep(Math.max(0, t + 5000 - Date.now()));
      const restore = Date.now();
      ctx.quiet.push({ from: (fenced?.t ?? t + lab.ttlSeconds * 1000) + 50, to: restore, why: 'etcd quorum lost' });
      for (const v of victims) lab.startEtcd(v);
      ctx.measureFrom = restore;
      ctx.faulted = null;
      await recovered(ctx, restore, null, 20_000);
      await sleep(1500);
    },
  },
  {
    // Someone on the network without the cluster's credentials tries to take or break the
    // lead through etcd and to plant a dispatch script (intruder.ts): every attempt is
    // refused, and the leader keeps its key and token.
    name: 'intruder',
    only: ['vrrp-etcd', 'haproxy-etcd'],
    noFailover: true,
    async run(ctx) {
      ctx.faulted = null;
      const { checks, notes } = await intruderAttacks(ctx.lab);
      ctx.extraChecks.push(...checks);
      ctx.notes.push(...notes);
      await sleep(1000);
    },
  },
  {
    name: 'flap',
    async run(ctx) {
      const { lab, leader } = ctx;
      for (let i = 0; i < 3; i++) {
        lab.net.setPort(leader.name, false);
        await sleep(600);
        lab.net.setPort(leader.name, true);
        await sleep(1500);
      }
      await sleep(1500);
    },
  },
  {
    // Drain, restart, undrain each node in turn, leader last, under the drain workload.
    name: 'rolling',
    drainLoad: true,
    plannedHandover: true,
    async run(ctx) {
      const { lab } = ctx;
      const todo = [...lab.gateways];
      while (todo.length) {
        // The standbys first, the node leading NOW last: leadership may have moved since the start.
        const current = lab.leader();
        const g = todo.find((x) => x !== current) ?? todo[0]!;
        todo.splice(todo.indexOf(g), 1);
        const asked = Date.now();
        const leading = g === current;
        if (leading) {
          ctx.measureFrom = asked;
          ctx.handoffFrom = asked;
          ctx.handoffOf = g;
          ctx.faulted = g.name;
          ctx.notes.push(`${g.name} leads at its drain with ${lab.commandPids(g).length} command processes`);
        } else if (!todo.length) {
          ctx.notes.push(`${g.name}, drained last, did not lead at its turn (leader: ${current?.name ?? 'none'}): no leader's drain measured`);
        }
        await lab.drain(g);
        await until(`${g.name} drained`, async () => (await lab.drainPhase(g)) === 'drained', ctx.drainLoad.waitMs, 100)
          .then(() => {
            if (!leading) return;
            ctx.drainedAt = Date.now();
            ctx.notes.push(`${g.name} drained ${ctx.drainedAt - asked} ms after the request`);
          })
          .catch(() => ctx.notes.push(`${g.name}: drain did not complete within ${ctx.drainLoad.waitMs / 1000} s`));
        await lab.restartExecgate(g);
        await lab.undrain(g);
        await lab.waitSteady(30_000).catch(() => ctx.notes.push(`not steady after restarting ${g.name}`));
      }
    },
  },
];

export function scenariosFor(topology: Topology, names: string[] | 'all'): Scenario[] {
  const list = SCENARIOS.filter((s) => !s.only || s.only.includes(topology));
  if (names === 'all') return list;
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return list.filter((s) => names.includes(s.name));
}

/** The drain request at `from` to the first `leader` report of another node; null when none (or no drain). */
function handoff(lab: FailoverLab, drained: Gateway, from: number | undefined): number | null {
  if (from === undefined) return null;
  const at = lab.gateways.filter((g) => g !== drained).flatMap((g) => g.roles.filter((e) => e.role === 'leader' && e.t >= from).map((e) => e.t));
  return at.length ? Math.min(...at) - from : null;
}

/** Fences during [from, to]: in a planned scenario a sign that a lease renewal was missed. */
function unplannedFences(lab: FailoverLab, from: number, to: number): string[] {
  const fences = lab.gateways.flatMap((g) => g.roles.filter((r) => r.role === 'fenced' && r.t >= from && r.t <= to).map((r) => `${g.name} at +${r.t - from} ms`));
  return fences.length ? [`fenced: ${fences.join(', ')}`] : [];
}

/** Failed executions grouped by cause (ids and numbers blanked), with when they started, relative to `t`. */
function failureCauses(executions: Execution[], t: number): string[] {
  const groups = new Map<string, { n: number; first: number; last: number }>();
  for (const e of executions.filter((x) => x.ok === false)) {
    const cause = `${e.kind} ${e.detail.split(e.execid).join('ID').replace(/\d+/g, '#').replace(/\s+/g, ' ').slice(0, 90)}`;
    const g = groups.get(cause) ?? { n: 0, first: e.t0, last: e.t0 };
    g.n++;
    g.first = Math.min(g.first, e.t0);
    g.last = Math.max(g.last, e.t0);
    groups.set(cause, g);
  }
  return [...groups]
    .sort((a, b) => b[1].n - a[1].n)
    .slice(0, 5)
    .map(([cause, g]) => `${g.n}x ${cause} (started ${(g.first - t) / 1000}..${(g.last - t) / 1000} s after the fault)`);
}

/** One scenario with its workload, measurements and checks; with keepDir, its executions are written there. */
export async function runScenario(lab: FailoverLab, s: Scenario, repeat: number, keepDir?: string, drainLoad: DrainLoad = DRAIN_LOADS.long): Promise<ScenarioResult> {
  await lab.waitSteady(40_000);
  const leader = lab.leader()!;
  const wl = new Workload(lab, s.drainLoad ? drainLoad.workload : s.workload);
  const ctx: Ctx = { lab, wl, leader, notes: [], quiet: [], extraChecks: [], drainLoad };
  const since = Date.now();
  wl.start();
  await sleep(s.drainLoad ? drainLoad.warmupMs : (s.warmupMs ?? 1500));
  const t = Date.now();
  let error: Error | null = null;
  try {
    await s.run(ctx, t);
  } catch (err) {
    error = err as Error;
  }
  await sleep(1000);
  await wl.stop();
  const end = Date.now();
  await lab.waitSteady(40_000).catch((err: Error) => ctx.notes.push(`not steady afterwards: ${err.message}`));
  await sleep(lab.etcd ? 500 : 2500); // killGraceSeconds for terminated commands on a former leader
  const from = ctx.measureFrom ?? t;
  const faulted = ctx.faulted === undefined ? leader.name : ctx.faulted;
  const first = wl.firstSuccess(from, faulted);
  const recoveredAt = first?.t1 ?? end;
  const window = wl.executions.filter((e) => e.t0 <= recoveredAt && (e.t1 ?? end) >= t);
  // Planned maintenance and flapping count every execution of the scenario, not only the fault's window.
  const counted = s.plannedHandover || s.name === 'flap' ? wl.executions : window;
  if (wl.jschHangs) ctx.notes.push(`${wl.jschHangs} JSch step(s) hung on a dead connection (no client keepalive) until the lab killed the socket`);
  // Say why they failed (failureCauses, below): a figure without a cause cannot be acted on.
  if (keepDir) writeFileSync(join(keepDir, `${lab.topology}-${s.name}-${repeat}-executions.json`), JSON.stringify(wl.executions));
  const order = s.plannedHandover && lab.handover === 'fast' ? 'admission' : 'fencing';
  const { checks, overlaps } = runChecks({ lab, executions: wl.executions, since, quietWindows: ctx.quiet, order });
  checks.push(...ctx.extraChecks);
  if (error) checks.push({ name: 'scenario ran', ok: false, detail: error.message });
  const handoffMs = handoff(lab, ctx.handoffOf ?? leader, ctx.handoffFrom);
  ctx.notes.push(...unplannedFences(lab, t, end));
  ctx.notes.push(...failureCauses(wl.executions, t));
  if (ctx.handoffFrom !== undefined) ctx.notes.push(handoffMs === null ? 'handoff: no other node led' : `handoff: another node led ${handoffMs} ms after the drain request`);
  // A drain's new commands may wait (a VIP drain holds their connections) until the old leader has drained.
  const waited = waitedForLead(wl.executions, t, from, s.plannedHandover && ctx.drainedAt !== undefined ? Math.max(ctx.drainedAt, recoveredAt) : recoveredAt);
  return {
    topology: lab.topology,
    scenario: s.name,
    repeat,
    handover: lab.handover,
    handoffMs,
    shortBaselineMs: waited.baselineMs,
    waitedMedianMs: waited.medianMs,
    waitedMaxMs: waited.maxMs,
    waitedSamples: waited.samples,
    failoverMs: first && !s.noFailover ? first.t1! - from : null,
    failed: counted.filter((e) => e.ok === false && e.kind !== 'manual').length,
    total: counted.length,
    splitBrainMs: splitBrainMs(lab, t, end),
    overlaps,
    checks,
    notes: ctx.notes,
  };
}
