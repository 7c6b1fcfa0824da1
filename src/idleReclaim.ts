import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from './log.js';

/**
 * Gives memory back once a burst of work is over.
 *
 * V8 collects garbage only when JavaScript allocates. When a load ends the gateway stops
 * allocating, so what the load left behind stays: a young generation grown to its
 * maximum (2 x 16 MiB semi-spaces, most of it resident), dead objects in the old
 * generation, and the Buffers they hold (socket and channel data, freed to malloc only
 * when their JS objects are collected). V8's own memory reducer runs only after some
 * events (start-up, old-generation growth): after the bench load (issue 19) it did not,
 * and RSS stayed at ~150 MiB for minutes; it fell back to the idle figure within 2 s of
 * two full collections.
 *
 * So: every intervalMs, look at the event loop's utilization over the interval. Busy
 * (above quietUtilization) arms two collections; each quiet interval after that runs
 * one. Two, an interval apart, because V8 shrinks the young generation only in a full
 * collection that sees a low allocation rate, judged over its last 5 s of collections:
 * the first frees the garbage, the second (7 s later, so the load is out of V8's window)
 * also returns the semi-spaces. At 5 s apart it often did not (timer jitter put the
 * load's own collection back in the window).
 * Start-up counts as busy (module loading leaves the same garbage and a grown young
 * generation). A collection costs ~10-30 ms of a quiet event loop; nothing runs while
 * the gateway is busy, so a loaded gateway's latency and throughput are unchanged.
 */
export interface IdleReclaimOptions {
  /** How often to look (ms). */
  intervalMs?: number;
  /** Event loop utilization (0..1) over one interval at or below which the gateway is quiet. */
  quietUtilization?: number;
  /** A full garbage collection; null when none is available (then this does nothing). */
  collect?: (() => void) | null;
  /** Utilization since the previous call (the first call: since start-up). */
  utilization?: () => number;
  log?: Logger;
}

/** More than V8's 5 s allocation-rate window (see above). */
export const RECLAIM_INTERVAL_MS = 7_000;
export const QUIET_UTILIZATION = 0.1;
/** Collections after each busy period: see above. */
const COLLECTIONS_PER_QUIET = 2;

/**
 * V8's full collection, without --expose-gc on the command line: the flag is switched
 * on just long enough to create one context that has `gc`, then off again (so no other
 * context gets it). null if this V8 refuses.
 */
export function fullGc(): (() => void) | null {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** Event loop utilization since the previous call. */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

export class IdleReclaim {
  private readonly intervalMs: number;
  private readonly quiet: number;
  private readonly collect: (() => void) | null;
  private readonly utilization: () => number;
  private readonly log: Logger | undefined;
  private timer: NodeJS.Timeout | null = null;
  /** Collections still owed for the last busy period (start-up included). */
  private owed = COLLECTIONS_PER_QUIET;
  /** Collections run so far (tests and debugging). */
  collections = 0;

  constructor(options: IdleReclaimOptions = {}) {
    this.intervalMs = options.intervalMs ?? RECLAIM_INTERVAL_MS;
    this.quiet = options.quietUtilization ?? QUIET_UTILIZATION;
    this.collect = options.collect === undefined ? fullGc() : options.collect;
    this.utilization = options.utilization ?? loopUtilization();
    this.log = options.log;
  }

  start(): void {
    if (this.timer || !this.collect) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref(); // never what keeps the process alive
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look: exported for tests (start() calls it every intervalMs). */
  tick(): void {
    const u = this.utilization();
    if (u > this.quiet) {
      this.owed = COLLECTIONS_PER_QUIET;
      return;
    }
    if (this.owed === 0 || !this.collect) return;
    this.owed--;
    const started = performance.now();
    this.collect();
    this.collections++;
    this.log?.debug({ ms: Math.round(performance.now() - started), utilization: Number(u.toFixed(4)) }, 'idle: collected garbage');
  }
}
