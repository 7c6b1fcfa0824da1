import { describe, it, expect } from 'vitest';
import { admissionViolations, auditAccounting, fencingOverlaps, overlappingOldCommands, type AuditLine, type LedgerLine, type TokenRun } from '../../deploy/lab/netns/checks.js';
import { waitedForLead, type Execution } from '../../deploy/lab/netns/workload.js';

/**
 * The failover lab's order checks and the waited-for-lead figure, on hand-made runs
 * (the lab itself needs root and is run by failover.test.ts).
 */
const run = (node: string, token: number, start: number, end: number): TokenRun => ({ node, token: BigInt(token), start, end });

describe('failover lab: token order between nodes', () => {
  // A fast handover: gw1 (token 5) still runs two long commands when gw2 (token 7) starts at 1000.
  const fast = [run('gw1', 5, 0, 3000), run('gw1', 5, 500, 1800), run('gw1', 5, 900, 950), run('gw2', 7, 1000, 1100), run('gw2', 7, 1200, 1300)];

  it('admission order holds when the old leader only finished what it had started', () => {
    expect(admissionViolations(fast, 'audit')).toEqual([]);
  });

  it('the overlaps of a fast handover are counted per old-token command, with how long each outlived the new token', () => {
    expect(overlappingOldCommands(fast).sort((a, b) => a - b)).toEqual([800, 2000]);
    expect(fencingOverlaps(fast)).toMatchObject({ pairs: 4, maxMs: 2000 });
  });

  it('an old token that starts a command after the new token began is a violation, named with both nodes', () => {
    const late = [...fast, run('gw1', 5, 1150, 1160)];
    const v = admissionViolations(late, 'ledger');
    expect(v).toHaveLength(1);
    expect(v[0]).toBe('ledger: gw1#5 started 150 ms after gw2#7 began');
  });

  it('the same node under two tokens is not compared, and strict order has no overlap', () => {
    const strict = [run('gw1', 5, 0, 900), run('gw1', 8, 2000, 2100), run('gw2', 7, 1000, 1900)];
    expect(admissionViolations(strict, 'audit')).toEqual([]);
    expect(overlappingOldCommands(strict)).toEqual([]);
    expect(fencingOverlaps(strict).pairs).toBe(0);
  });
});

describe('failover lab: time a new command waited for the lead', () => {
  const short = (t0: number, ms: number, ok = true): Execution => ({ execid: `x${t0}`, kind: 'short', t0, t1: t0 + ms, ok, node: 'gw1', token: '1', code: ok ? 0 : 75, detail: '' });

  it('is each short command during the handover minus the median before it, never below 0; failures do not count', () => {
    const ex = [short(0, 100), short(100, 120), short(200, 110), short(1000, 600), short(1100, 90), short(1200, 5000, false), short(3000, 2000)];
    // baseline: 110 (ended by 1000); during [1000, 2000]: 600 -> 490, 90 -> 0.
    expect(waitedForLead(ex, 1000, 1000, 2000)).toEqual({ baselineMs: 110, medianMs: 245, maxMs: 490, samples: 2 });
  });

  it('has no figure without a baseline or without commands in the window', () => {
    expect(waitedForLead([short(1000, 50)], 500, 1000, 2000).medianMs).toBeNull();
    expect(waitedForLead([short(0, 50)], 500, 1000, 2000)).toEqual({ baselineMs: 50, medianMs: null, maxMs: null, samples: 0 });
  });
});

describe('failover lab: the audit accounts for every execution', () => {
  const ledger = (execid: string, node: string, start: number, end: number): LedgerLine => ({ execid, node, token: '3', start, end });
  const audit = (execid: string, node: string, result: string): AuditLine => ({ node, rdJobExecId: execid, token: '3', start: 0, end: 0, result, command: 'sh -c x', exitStatus: 0 });
  const client = (execid: string, ok: boolean): Execution => ({ execid, kind: 'short', t0: 0, t1: 1, ok, node: 'gw1', token: '3', code: ok ? 0 : null, detail: '' });

  it('a command its gateway died under is accounted for by the "lost" record of the restarted gateway', () => {
    const c = auditAccounting([ledger('a', 'gw1', 0, 5000)], [audit('a', 'gw1', 'lost')], [client('a', false)], new Map([['gw1', [100]]]));
    expect(c.ok).toBe(true);
    expect(c.detail).toContain('1 ended "lost"');
  });

  it('a ledger line with no audit record at all fails, named', () => {
    const c = auditAccounting([ledger('a', 'gw1', 0, 5000)], [], [client('a', false)], new Map());
    expect(c.ok).toBe(false);
    expect(c.detail).toBe('1 ledger lines without audit: a@gw1');
  });

  it('"lost" does not excuse a run whose client saw success, nor a record of another node', () => {
    expect(auditAccounting([ledger('a', 'gw1', 0, 50)], [audit('a', 'gw1', 'lost')], [client('a', true)], new Map()).ok).toBe(false);
    expect(auditAccounting([ledger('a', 'gw1', 0, 50)], [audit('a', 'gw2', 'lost')], [client('a', false)], new Map()).ok).toBe(false);
  });

  it('before any restart, a command that ended just before its gateway died is counted, not failed', () => {
    const deaths = new Map([['gw1', [1500]]]);
    expect(auditAccounting([ledger('a', 'gw1', 0, 1000)], [], [client('a', false)], deaths).ok).toBe(true);
    expect(auditAccounting([ledger('a', 'gw1', 0, 1000)], [], [client('a', false)], new Map([['gw1', [4000]]])).ok).toBe(false);
  });
});
