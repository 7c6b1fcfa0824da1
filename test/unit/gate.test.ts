import { describe, it, expect } from 'vitest';
import { admit } from '../../src/leadership/gate.js';
import { StaticLeadership } from '../../src/leadership/static.js';
import type { LeadershipState } from '../../src/leadership/types.js';
import { FakeLeadership } from '../helpers/fakeLeadership.js';

describe('leader gate', () => {
  it('admits on the static leader with its token', () => {
    expect(admit('gw1', new StaticLeadership('gw1', 5n))).toEqual({ admitted: true, token: 5n });
  });

  it('refuses a standby, naming the node, the leader and the token', () => {
    const standby = new FakeLeadership('gw2', { role: 'standby', token: 17n, leader: 'gw1', since: 0 });
    expect(admit('gw2', standby)).toEqual({
      admitted: false,
      reason: 'standby',
      message: 'execgate: gw2 is standby; leader is gw1 (token 17); not running',
    });
  });
});

describe('gate message format', () => {
  it('names the node, the known leader and the token', () => {
    const view = (s: LeadershipState) => ({ current: () => s });
    expect(admit('gw2', view({ role: 'standby', token: 12n, leader: 'gw1', since: 0 })).admitted).toBe(false);
    expect(admit('gw2', view({ role: 'standby', token: 12n, leader: 'gw1', since: 0 }))).toMatchObject({
      message: 'execgate: gw2 is standby; leader is gw1 (token 12); not running',
    });
    expect(admit('gw2', view({ role: 'fenced', token: null, since: 0 }))).toMatchObject({
      reason: 'fenced',
      message: 'execgate: gw2 is fenced; no leader is known; not running',
    });
  });
});
