import { describe, expect, it } from 'vitest';
import { RefusalLogBudget, hasClusterToken } from '../../src/cluster/peerAuth.js';

describe('peer requests: the cluster token and the refusal log budget', () => {
  it('accepts exactly the bearer token', () => {
    const req = (authorization?: string) => ({ headers: authorization === undefined ? {} : { authorization } });
    expect(hasClusterToken(req('Bearer the-cluster-token-123'), 'the-cluster-token-123')).toBe(true);
    expect(hasClusterToken(req('bearer the-cluster-token-123 '), 'the-cluster-token-123')).toBe(true);
    expect(hasClusterToken(req('Bearer the-cluster-token-12'), 'the-cluster-token-123')).toBe(false);
    expect(hasClusterToken(req(), 'the-cluster-token-123')).toBe(false);
    expect(hasClusterToken(req('Bearer anything-at-all-here'), undefined)).toBe(false);
  });

  it('logs at most N refusals per address per window, then says how many went unlogged', () => {
    let now = 0;
    const budget = new RefusalLogBudget(2, 1000, () => now);
    expect(budget.take('198.18.0.9')).toEqual({ suppressed: 0 });
    expect(budget.take('198.18.0.9')).toEqual({ suppressed: 0 });
    expect(budget.take('198.18.0.9')).toBeNull();
    expect(budget.take('198.18.0.9')).toBeNull();
    expect(budget.take('198.18.0.10')).toEqual({ suppressed: 0 }); // another address has its own budget
    now = 1000;
    expect(budget.take('198.18.0.9')).toEqual({ suppressed: 2 });
    expect(budget.take('198.18.0.9')).toEqual({ suppressed: 0 });
  });
});
