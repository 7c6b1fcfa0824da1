import type { Logger } from '../log.js';
import { EXIT_TEMPFAIL } from '../exitCodes.js';
import { isoTime } from '../time.js';
import type { Metrics } from '../metrics.js';
import type { ClaimStore, ClaimRecord } from './claimStore.js';
import { findExecutionId, isPerNodeStep, stepDigest, OccurrenceCounter } from './stepKey.js';

export type RunOnceDecision =
  /** Upload, chmod and rm of the dispatch script: every node runs its own. */
  | { action: 'run-local' }
  /** This node won the claim: run, then report the exit status. */
  | { action: 'run-claimed'; key: string; token: bigint; finish: (status: number) => Promise<void> }
  /** Another node ran (or runs) the step: print the line, exit with the status. */
  | { action: 'answer'; status: number; line: string; outcome: 'skipped' | 'mirrored' | 'unknown' }
  /** Never run unguarded. */
  | { action: 'refuse'; reason: string; message: string };

export interface RunOnceOptions {
  node: string;
  prefix: string;
  store: ClaimStore;
  skipFast: boolean;
  retentionMs: number;
  pollMs: number;
  log: Logger;
  metrics: Metrics;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run-once: the same step dispatched to every gateway runs on exactly one of them
 * (the first to create its claim in etcd); the others mirror its exit status, so the
 * job stays green and step order holds on every node.
 */
export class RunOnceCoordinator {
  private readonly occurrences: OccurrenceCounter;

  constructor(private readonly options: RunOnceOptions) {
    this.occurrences = new OccurrenceCounter(options.retentionMs);
  }

  async decide(command: string, env: ReadonlyMap<string, string>, cancelled: () => boolean): Promise<RunOnceDecision> {
    const { node, store, metrics, log } = this.options;
    if (isPerNodeStep(command)) return { action: 'run-local' };
    const execId = findExecutionId(env, command);
    if (execId === null) {
      return {
        action: 'refuse',
        reason: 'run-once-no-execid',
        message: 'execgate: run-once needs the Rundeck execution id (RD_JOB_EXECID via ssh-send-env, or a dispatch-script path); not running unguarded',
      };
    }
    const names = [node, env.get('RD_NODE_NAME') ?? '', env.get('RD_NODE_HOSTNAME') ?? ''];
    const digest = stepDigest(command, names);
    const occurrence = this.occurrences.next(execId, digest);
    const key = `${this.options.prefix}/claims/${execId}/${digest}/${occurrence}`;
    const record: ClaimRecord = { node, start: isoTime() };
    let result;
    try {
      result = await store.claim(key, record);
    } catch (err) {
      // The claim may have landed although the answer did not: end it, or the nodes
      // waiting for it would wait as long as this node stays alive.
      void this.retry(key, 'abandoning an unconfirmed claim', () => store.abandon(key, record, { ...record, end: isoTime(), exit: EXIT_TEMPFAIL, abandoned: true }));
      return { action: 'refuse', reason: 'run-once-unavailable', message: `execgate: run-once cannot reach etcd (${(err as Error).message}); not running unguarded` };
    }
    if (result.won) {
      metrics.runOnceClaims.inc({ outcome: 'won' });
      log.info({ key, token: result.token.toString(), execId }, 'run-once claim won');
      return {
        action: 'run-claimed',
        key,
        token: result.token,
        finish: (status) => this.finish(key, { ...record, end: isoTime(), exit: status }),
      };
    }
    metrics.runOnceClaims.inc({ outcome: 'lost' });
    const winner = `${result.record.node} (token ${result.token})`;
    if (this.options.skipFast) {
      return { action: 'answer', status: 0, outcome: 'skipped', line: `execgate: step runs on ${winner}; runOnce.skipFast: not waiting` };
    }
    return this.waitForWinner(key, winner, cancelled);
  }

  private async waitForWinner(key: string, winner: string, cancelled: () => boolean): Promise<RunOnceDecision> {
    const { store, metrics, pollMs } = this.options;
    metrics.runOnceClaims.inc({ outcome: 'waited' });
    let failures = 0;
    while (!cancelled()) {
      let state;
      try {
        state = await store.read(key);
        failures = 0;
      } catch (err) {
        if (++failures >= 20) {
          return { action: 'refuse', reason: 'run-once-unavailable', message: `execgate: lost etcd while waiting for ${winner} (${(err as Error).message}); outcome unknown` };
        }
        await sleep(pollMs);
        continue;
      }
      if (state?.record.abandoned) {
        metrics.runOnceClaims.inc({ outcome: 'unknown' });
        return {
          action: 'answer',
          status: EXIT_TEMPFAIL,
          outcome: 'unknown',
          line: `execgate: step was claimed by ${winner}, which could not confirm its claim in etcd and did not run it; not running it (a job retry gets a new execution id)`,
        };
      }
      if (state && state.record.exit !== undefined) {
        return { action: 'answer', status: state.record.exit, outcome: 'mirrored', line: `execgate: step ran on ${winner}, exit ${state.record.exit}` };
      }
      if (!state || !state.winnerAlive) {
        metrics.runOnceClaims.inc({ outcome: 'unknown' });
        return {
          action: 'answer',
          status: EXIT_TEMPFAIL,
          outcome: 'unknown',
          line: `execgate: step was claimed by ${winner}, which died before it finished; outcome unknown; not running it again (a job retry gets a new execution id)`,
        };
      }
      await sleep(pollMs);
    }
    return { action: 'answer', status: EXIT_TEMPFAIL, outcome: 'unknown', line: `execgate: client went away while waiting for ${winner}` };
  }

  /** Records the winner's exit status; retried, because losers wait for it. */
  private finish(key: string, record: ClaimRecord): Promise<void> {
    return this.retry(key, 'recording the exit status', () => this.options.store.finish(key, record));
  }

  /** Losers wait for what this writes: retried with backoff. */
  private async retry(key: string, what: string, write: () => Promise<void>): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        return await write();
      } catch (err) {
        this.options.log.warn({ key, attempt, err: (err as Error).message }, `run-once: ${what} failed; retrying`);
        await sleep(Math.min(5000, 200 * 2 ** attempt));
      }
    }
    this.options.log.error({ key }, `run-once: ${what} failed for good; waiting nodes will report an unknown outcome once this node stops`);
  }
}
