import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUNDECK_CONNECT_TIMEOUT_MS, type LabClient } from './client.js';

/** One execution as the client saw it. */
export interface Execution {
  execid: string;
  kind: 'short' | 'long' | 'step' | 'manual';
  /** Client clock (all lab hosts share one clock). */
  t0: number;
  t1: number | null;
  /** null while pending. */
  ok: boolean | null;
  node: string | null;
  token: string | null;
  code: number | null;
  detail: string;
}

/** What the workload needs of the lab (FailoverLab is one). */
export interface WorkloadLab {
  readonly client: LabClient;
  /** The run's directory, seen by every host (the step script). */
  readonly dir: string;
  /** Each host's own directory (the ledger). */
  readonly hostDir: string;
  /** The run's prefix (execution ids). */
  readonly prefix: string;
}

export interface WorkloadOptions {
  shortEveryMs?: number;
  /** 0 disables long commands. */
  longEveryMs?: number;
  longSeconds?: [number, number];
  steps?: boolean;
  /** TCP connect plus SSH handshake, per command; the answer may come this much later too. */
  connectTimeoutMs?: number;
}

/** The workload of the drain and rolling scenarios, its warm-up, and how long a drained leader may take. */
export interface DrainLoad {
  workload: WorkloadOptions;
  /** Before the drain: several long commands are running by then. */
  warmupMs: number;
  /** The longest a drained leader waits for its commands, plus margin. */
  waitMs: number;
}

export const DRAIN_LOADS = {
  /** What the acceptance runs and docs/failover.md report: 10-30 s commands, a new one every 3.5 s. */
  long: {
    workload: { longEveryMs: 3500, longSeconds: [10, 30], steps: true, connectTimeoutMs: RUNDECK_CONNECT_TIMEOUT_MS },
    warmupMs: 12_000,
    waitMs: 50_000,
  },
  /** The same shape at about a third of the length (4-10 s commands), for CI's one run per scenario. */
  short: {
    workload: { longEveryMs: 1500, longSeconds: [4, 10], steps: true, connectTimeoutMs: RUNDECK_CONNECT_TIMEOUT_MS },
    warmupMs: 5_000,
    waitMs: 30_000,
  },
} satisfies Record<string, DrainLoad>;
export type DrainLoadName = keyof typeof DRAIN_LOADS;

/**
 * Every command appends `execid node token start end` to the ledger on the node that ran
 * it and prints `ok execid node token`. The ledger lives in the host's own tmpfs.
 */
export function commandBody(lab: Pick<WorkloadLab, 'hostDir'>, work: string): string {
  const ledger = join(lab.hostDir, 'ledger');
  return `s=$(date +%s%3N); ${work}; e=$(date +%s%3N); echo "$RD_JOB_EXECID $EXECGATE_NODE $EXECGATE_FENCING_TOKEN $s $e" >> ${ledger} && echo "ok $RD_JOB_EXECID $EXECGATE_NODE $EXECGATE_FENCING_TOKEN"`;
}

let seq = 0;
export function newExecId(lab: Pick<WorkloadLab, 'prefix'>): string {
  seq += 1;
  return `${lab.prefix}-${Date.now().toString(36)}-${seq}`;
}

function parseOk(execid: string, stdout: string): { node: string; token: string } | null {
  const m = new RegExp(`(?:^|\\n)ok ${execid} (\\S+) (\\S+)`).exec(stdout);
  return m ? { node: m[1]!, token: m[2]! } : null;
}

/** A Rundeck-like stream: short commands, long ones, and JSch script steps through one JVM. */
export class Workload {
  readonly executions: Execution[] = [];
  /** JSch steps that hung on a dead connection until the lab killed the socket. */
  jschHangs = 0;
  private running = false;
  private timers: NodeJS.Timeout[] = [];
  private inflight = new Set<Promise<void>>();
  private readonly opts: Required<WorkloadOptions>;
  private readonly script: string;

  constructor(
    private readonly lab: WorkloadLab,
    opts: WorkloadOptions = {},
  ) {
    this.opts = { shortEveryMs: 150, longEveryMs: 1000, longSeconds: [2, 4], steps: true, connectTimeoutMs: 5000, ...opts };
    this.script = join(lab.dir, 'step-script.sh');
    writeFileSync(this.script, `#!/bin/sh\n${commandBody(lab, 'sleep 0.2')}\n`, { mode: 0o755 });
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** One exec on a new connection through the target. */
  exec(kind: Execution['kind'], work: string, commandMs = 25_000): Promise<Execution> {
    const timeoutMs = this.opts.connectTimeoutMs + commandMs;
    const execid = newExecId(this.lab);
    const e: Execution = { execid, kind, t0: Date.now(), t1: null, ok: null, node: null, token: null, code: null, detail: '' };
    this.executions.push(e);
    const p = this.lab.client
      .request({ op: 'exec', ...this.lab.client.target, command: commandBody(this.lab, work), env: { RD_JOB_EXECID: execid }, timeoutMs, connectTimeoutMs: this.opts.connectTimeoutMs })
      .then((r) => {
        const res = r as { code: number | null; stdout?: string; stderr?: string; error?: string | null; t0: number; t1: number };
        e.t0 = res.t0 ?? e.t0;
        e.t1 = res.t1 ?? Date.now();
        e.code = res.code ?? null;
        const ok = res.code === 0 ? parseOk(execid, res.stdout ?? '') : null;
        e.ok = ok !== null;
        e.node = ok?.node ?? null;
        e.token = ok?.token ?? null;
        e.detail = ok ? '' : (res.error ?? `exit ${res.code}: ${(res.stderr ?? '').trim().slice(0, 200)}`);
      });
    this.track(p);
    return p.then(() => e);
  }

  private async stepLoop(): Promise<void> {
    while (this.running) {
      const execid = newExecId(this.lab);
      const e: Execution = { execid, kind: 'step', t0: Date.now(), t1: null, ok: null, node: null, token: null, code: null, detail: '' };
      this.executions.push(e);
      const r = await this.lab.client.jschStep(execid, this.script);
      if (r.hung) this.jschHangs++;
      e.t1 = Date.now();
      const run = r.ops.find((o) => o.op === 'exec' && typeof o.command === 'string' && !/^(chmod|rm) /.test(o.command as string));
      const ok = r.ok && r.exit === 0 && run ? parseOk(execid, String(run.stdout ?? '')) : null;
      e.ok = ok !== null;
      e.node = ok?.node ?? null;
      e.token = ok?.token ?? null;
      e.code = r.exit ?? null;
      if (!ok) {
        const failed = r.ops.find((o) => o.op === 'exec' && o.exit !== 0);
        e.detail =
          (r.hung ? 'JSch hung (no keepalive) until its socket was killed: ' : '') +
          (r.message ??
            (failed
              ? `${String(failed.command).split(' ')[0]} exit ${failed.exit}: ${String(failed.stderr ?? '')
                  .trim()
                  .slice(0, 160)}`
              : `exit ${r.exit}`));
      }
      await new Promise((res) => setTimeout(res, 500));
    }
  }

  start(): void {
    this.running = true;
    this.startTimers();
    if (this.opts.steps) this.track(this.stepLoop());
  }

  private startTimers(): void {
    this.timers.push(setInterval(() => void this.exec('short', 'sleep 0.05'), this.opts.shortEveryMs));
    if (this.opts.longEveryMs > 0) {
      const [lo, hi] = this.opts.longSeconds;
      const long = () => {
        const seconds = lo + Math.random() * (hi - lo);
        // The answer may come late (a standby waits for the lead): 30 s beyond the command itself.
        void this.exec('long', `sleep ${seconds.toFixed(1)}`, Math.ceil(seconds * 1000) + 25_000);
      };
      long();
      this.timers.push(setInterval(long, this.opts.longEveryMs));
    }
  }

  /** Stops issuing and waits for everything in flight. */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    while (this.inflight.size) await Promise.all([...this.inflight]);
  }

  /** The first success started at or after `from` on a node other than `not`. */
  firstSuccess(from: number, not: string | null): Execution | null {
    const found = this.executions.filter((e) => e.ok && e.t0 >= from && e.node !== not && e.t1 !== null && (e.kind === 'short' || e.kind === 'long')).sort((a, b) => a.t1! - b.t1!);
    return found[0] ?? null;
  }
}

export const median = (xs: number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};

export interface Waited {
  /** Median duration of successful short commands that started before the fault. */
  baselineMs: number | null;
  /** Successful short commands started between the fault and recovery: duration minus the baseline (0 at least). */
  medianMs: number | null;
  maxMs: number | null;
  samples: number;
}

/**
 * How long a new command waited for the lead: short commands started in [fault, recovered]
 * against the ones that ended before `baselineUntil` (the first fault of the scenario).
 */
export function waitedForLead(executions: Execution[], baselineUntil: number, fault: number, recovered: number): Waited {
  const shortOk = executions.filter((e) => e.kind === 'short' && e.ok && e.t1 !== null);
  const baselineMs = median(shortOk.filter((e) => e.t1! <= baselineUntil).map((e) => e.t1! - e.t0));
  const during = shortOk.filter((e) => e.t0 >= fault && e.t0 <= recovered);
  if (baselineMs === null || !during.length) return { baselineMs, medianMs: null, maxMs: null, samples: during.length };
  const waits = during.map((e) => Math.max(0, e.t1! - e.t0 - baselineMs));
  return { baselineMs, medianMs: median(waits), maxMs: Math.max(...waits), samples: waits.length };
}
