import { describe, it, expect } from 'vitest';
import { pino } from 'pino';
import { findExecutionId, isPerNodeStep, stepDigest, OccurrenceCounter } from '../../src/runonce/stepKey.js';
import { RunOnceCoordinator } from '../../src/runonce/coordinator.js';
import { MemoryClaimStore, type ClaimRecord } from '../../src/runonce/claimStore.js';
import { createMetrics } from '../../src/metrics.js';

describe('run-once step keys', () => {
  it('finds the execution id in env, else in the dispatch-script path', () => {
    expect(findExecutionId(new Map([['RD_JOB_EXECID', '42']]), 'true')).toBe('42');
    expect(findExecutionId(new Map(), '/tmp/3-1234-gw1-dispatch-script.tmp.sh arg')).toBe('1234');
    expect(findExecutionId(new Map(), 'echo hi')).toBeNull();
  });

  it('treats upload, chmod and rm of the dispatch script as per-node steps', () => {
    expect(isPerNodeStep('scp -t /tmp/3-1234-gw1-dispatch-script.tmp.sh')).toBe(true);
    expect(isPerNodeStep("scp -t -r -p '/tmp/3-1234-gw1-dispatch-script.tmp.sh'")).toBe(true);
    expect(isPerNodeStep('chmod +x /tmp/3-1234-gw1-dispatch-script.tmp.sh')).toBe(true);
    expect(isPerNodeStep('rm -f /tmp/3-1234-gw1-dispatch-script.tmp.sh')).toBe(true);
    expect(isPerNodeStep('/tmp/3-1234-gw1-dispatch-script.tmp.sh')).toBe(false);
    expect(isPerNodeStep('rm -f /var/data')).toBe(false);
  });

  it('normalises the node-specific parts so the same step has one digest on every node', () => {
    const a = stepDigest('/tmp/17-1234-gw1-dispatch-script.tmp.sh --target gw1', ['gw1']);
    const b = stepDigest('/tmp/92-1234-gw2-dispatch-script.tmp.sh --target gw2', ['gw2']);
    expect(a).toBe(b);
    expect(stepDigest('echo one', ['gw1'])).not.toBe(stepDigest('echo two', ['gw1']));
  });

  it('counts occurrences so identical steps in one workflow stay distinct', () => {
    const c = new OccurrenceCounter(60_000);
    expect([c.next('1', 'd'), c.next('1', 'd'), c.next('2', 'd')]).toEqual([1, 2, 1]);
  });
});

describe('run-once coordinator (in-memory claims)', () => {
  const log = pino({ level: 'silent' });
  const make = (node: string, data: Map<string, { token: bigint; record: ClaimRecord; alive: boolean }>, skipFast = false) => {
    const store = new MemoryClaimStore(data);
    return { store, c: new RunOnceCoordinator({ node, prefix: '/t', store, skipFast, retentionMs: 60_000, pollMs: 5, log, metrics: createMetrics(node, 'native') }) };
  };
  const env = new Map([['RD_JOB_EXECID', '77']]);

  it('one winner; a waiting loser mirrors its exit status', async () => {
    const data = new Map();
    const gw1 = make('gw1', data);
    const gw2 = make('gw2', data);
    const won = await gw1.c.decide('do-work', env, () => false);
    expect(won.action).toBe('run-claimed');
    const waiting = gw2.c.decide('do-work', env, () => false);
    if (won.action === 'run-claimed') await won.finish(4);
    const lost = await waiting;
    expect(lost).toMatchObject({ action: 'answer', status: 4, outcome: 'mirrored' });
  });

  it('skipFast answers 0 at once; a dead winner gives exit 75 and an unknown outcome', async () => {
    const data = new Map();
    const gw1 = make('gw1', data);
    await gw1.c.decide('job', env, () => false);
    expect(await make('gw2', data, true).c.decide('job', env, () => false)).toMatchObject({ action: 'answer', status: 0, outcome: 'skipped' });
    const waiting = make('gw3', data).c.decide('job', env, () => false);
    gw1.store.killWinner([...data.keys()][0]!);
    expect(await waiting).toMatchObject({ action: 'answer', status: 75, outcome: 'unknown' });
  });

  it('refuses when the claim store is unreachable', async () => {
    const { c, store } = make('gw1', new Map());
    store.claim = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    expect(await c.decide('job', env, () => false)).toMatchObject({ action: 'refuse', reason: 'run-once-unavailable' });
  });

  it('a claim that landed although its answer timed out is abandoned, so nobody waits for it forever', async () => {
    const data = new Map();
    const gw1 = make('gw1', data);
    const land = gw1.store.claim.bind(gw1.store);
    gw1.store.claim = async (key, record) => {
      await land(key, record);
      throw new Error('http://127.0.0.1:2379: timed out');
    };
    expect(await gw1.c.decide('job', env, () => false)).toMatchObject({ action: 'refuse', reason: 'run-once-unavailable' });
    const answer = await make('gw2', data).c.decide('job', env, () => false);
    expect(answer).toMatchObject({ action: 'answer', status: 75, outcome: 'unknown' });
    expect(answer.action === 'answer' && answer.line).toMatch(/claimed by gw1 \(token \d+\), which could not confirm its claim in etcd and did not run it/);
  });
});
