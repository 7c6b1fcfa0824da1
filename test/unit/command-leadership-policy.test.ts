import { describe, it, expect } from 'vitest';
import { pino } from 'pino';
import { followLeadership } from '../../src/command/leadershipPolicy.js';
import { FakeLeadership } from '../helpers/fakeLeadership.js';

function registry(size: number) {
  const calls: Array<{ reason: string; immediate: boolean }> = [];
  return { calls, size, terminateAll: async (reason: string, immediate = false) => void calls.push({ reason, immediate }) };
}
const log = pino({ level: 'silent' });

describe('what running commands do when the leadership changes', () => {
  it('a fence SIGKILLs every running command at once', () => {
    const leadership = new FakeLeadership('gw1');
    const commands = registry(2);
    followLeadership(leadership, { registry: commands, finishOnLoss: true, log });
    leadership.fence();
    expect(commands.calls).toEqual([{ reason: 'fenced: lease lost', immediate: true }]);
  });

  it('a lost lead terminates with grace (the default, and always under etcd)', () => {
    const leadership = new FakeLeadership('gw1');
    const commands = registry(1);
    followLeadership(leadership, { registry: commands, finishOnLoss: false, log });
    leadership.standBy('gw2', 8n);
    expect(commands.calls).toEqual([{ reason: 'leadership lost', immediate: false }]);
  });

  it('a draining leader that loses the lead terminates too', () => {
    const leadership = new FakeLeadership('gw1');
    const commands = registry(1);
    followLeadership(leadership, { registry: commands, finishOnLoss: false, log });
    leadership.set({ role: 'draining', token: 7n });
    leadership.standBy('gw2', 8n);
    expect(commands.calls).toEqual([{ reason: 'leadership lost', immediate: false }]);
  });

  it('onLeadershipLoss: finish lets the commands run on', () => {
    const leadership = new FakeLeadership('gw1');
    const commands = registry(1);
    followLeadership(leadership, { registry: commands, finishOnLoss: true, log });
    leadership.standBy('gw2', 8n);
    expect(commands.calls).toEqual([]);
  });

  it('nothing to end: no commands, or a standby that stays standby', () => {
    const idle = new FakeLeadership('gw1');
    const none = registry(0);
    followLeadership(idle, { registry: none, finishOnLoss: false, log });
    idle.standBy('gw2', 8n);
    const standby = new FakeLeadership('gw1', { role: 'standby', token: null });
    const some = registry(3);
    followLeadership(standby, { registry: some, finishOnLoss: false, log });
    standby.standBy('gw3', 9n);
    expect([...none.calls, ...some.calls]).toEqual([]);
  });

  it('unsubscribes', () => {
    const leadership = new FakeLeadership('gw1');
    const commands = registry(1);
    followLeadership(leadership, { registry: commands, finishOnLoss: false, log })();
    leadership.fence();
    leadership.standBy('gw2', 8n);
    expect(commands.calls).toEqual([]);
  });
});
