import { describe, expect, it } from 'vitest';
import { leaderCheckStatus } from '../../src/http/leaderCheck.js';
import type { LeadershipState } from '../../src/leadership/types.js';

const at = (s: Partial<LeadershipState>): LeadershipState => ({ role: 'standby', token: null, since: 0, ...s });

describe('GET /leader status for HAProxy (balance first, disable-on-404)', () => {
  it('200 for the leader, 503 for plain standbys, fenced nodes and anything unhealthy', () => {
    expect(leaderCheckStatus(at({ role: 'leader', token: 7n }), true, 300)).toBe(200);
    expect(leaderCheckStatus(at({ role: 'leader', token: 7n }), false, 300)).toBe(503);
    expect(leaderCheckStatus(at({ leader: 'gw1' }), true, 300)).toBe(503);
    expect(leaderCheckStatus(at({ leader: 'gw1', successor: false }), true, 300)).toBe(503);
    expect(leaderCheckStatus(at({ role: 'fenced' }), true, 300)).toBe(503);
    expect(leaderCheckStatus(at({ role: 'draining' }), true, 300)).toBe(503); // draining with commands still running
  });

  it('the next in line waits stopping (404) and asks for traffic (200) once the leader announces its handover', () => {
    expect(leaderCheckStatus(at({ leader: 'gw1', successor: true }), true, 300)).toBe(404);
    expect(leaderCheckStatus(at({ leader: 'gw1', successor: true, handover: { side: 'joining', id: '41' } }), true, 300)).toBe(200);
    expect(leaderCheckStatus(at({ leader: 'gw1', successor: true, handover: { side: 'joining', id: '41' } }), false, 300)).toBe(503);
  });

  it('a leader handing over keeps 200 for announceMs, then 404 (no new connections, sessions kept)', () => {
    const s = at({ role: 'draining', handover: { side: 'leaving', startedAt: 1000, admitting: true, trafficAway: true }, token: 7n });
    expect(leaderCheckStatus(s, true, 300, 1299)).toBe(200);
    expect(leaderCheckStatus(s, true, 300, 1300)).toBe(404);
    expect(leaderCheckStatus(s, true, 0, 1000)).toBe(404); // no load balancers: leave at once
  });

  it('a leader handing over answers 404 as soon as the next in line is UP everywhere (successorReady)', () => {
    const s = at({ role: 'draining', handover: { side: 'leaving', startedAt: 1000, admitting: true, trafficAway: true, successorReady: true }, token: 7n });
    expect(leaderCheckStatus(s, true, 300, 1001)).toBe(404);
    expect(leaderCheckStatus(s, false, 300, 1001)).toBe(503);
  });
});
