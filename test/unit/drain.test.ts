import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { DrainController } from '../../src/leadership/handover/drain.js';
import { admit } from '../../src/leadership/gate.js';
import { EXIT_TEMPFAIL } from '../../src/exitCodes.js';
import type { LeadershipState } from '../../src/leadership/types.js';
import { FakeLeadership } from '../helpers/fakeLeadership.js';
import { until } from '../helpers/until.js';

describe('DrainController over a Leadership that flips roles', () => {
  let source: FakeLeadership;
  let running: number;
  let terminated: string[];
  let drain: DrainController;
  let seen: LeadershipState[];

  const make = (timeoutSeconds = 60) => {
    drain = new DrainController(source, {
      running: () => running,
      terminate: async (why) => {
        terminated.push(why);
        running = 0;
      },
      timeoutSeconds,
      pollMs: 10,
    });
    seen = [];
    drain.onChange((s) => seen.push(s));
  };

  beforeEach(() => {
    source = new FakeLeadership('gw1');
    running = 0;
    terminated = [];
    make();
  });
  afterEach(() => drain.stop());

  it('passes the source through while active, and the gate admits a leader', () => {
    expect(drain.current().role).toBe('leader');
    expect(admit('gw1', drain)).toEqual({ admitted: true, token: 7n });
    source.standBy('gw2', 9n);
    expect(drain.current()).toMatchObject({ role: 'standby', leader: 'gw2', token: 9n });
    expect(seen.map((s) => s.role)).toEqual(['standby']);
  });

  it('refuses new commands with reason "draining" while commands still run, then releases', async () => {
    running = 2;
    const status = drain.drain();
    expect(status.phase).toBe('draining');
    expect(status.deadline! - status.since!).toBe(60_000);
    expect(drain.current()).toMatchObject({ role: 'draining', token: 7n, leader: 'gw1' });
    expect(drain.current().reason).toBe('draining: 2 commands still running');
    const decision = admit('gw1', drain);
    expect(decision).toEqual({ admitted: false, reason: 'draining', message: 'execgate: gw1 is draining; leader is gw1 (token 7); not running' });
    expect(EXIT_TEMPFAIL).toBe(75);
    expect(seen.map((s) => s.role)).toEqual(['draining']);
    expect(drain.drain().phase).toBe('draining'); // idempotent
    expect(source.calls).not.toContain('release');

    running = 0;
    const done = await drain.drained();
    expect(done.phase).toBe('drained');
    expect(source.calls.filter((c) => c === 'release')).toHaveLength(1);
    expect(terminated).toEqual([]);
    expect(drain.current().role).toBe('standby');
    expect(admit('gw1', drain)).toMatchObject({ admitted: false, reason: 'standby' });
    expect(seen.map((s) => s.role)).toEqual(['draining', 'standby']);
  });

  it('releases at once when nothing runs', async () => {
    drain.drain();
    await drain.drained();
    expect(source.calls).toEqual(['release']);
    expect(drain.status().phase).toBe('drained');
  });

  it('kills the remaining commands at the drain timeout, before releasing', async () => {
    make(0.05);
    running = 1;
    drain.drain();
    const done = await drain.drained();
    expect(done.phase).toBe('drained');
    expect(terminated).toEqual(['drain timeout (0.05 s)']);
    expect(source.calls).toEqual(['release']);
  });

  it('undrain before the release cancels the drain without touching the source', async () => {
    running = 1;
    drain.drain();
    const status = await drain.undrain();
    expect(status).toMatchObject({ phase: 'active', since: null, deadline: null });
    expect(drain.current().role).toBe('leader');
    running = 0;
    await new Promise((r) => setTimeout(r, 50));
    expect(source.calls).toEqual([]);
    expect(seen.map((s) => s.role)).toEqual(['draining', 'leader']);
  });

  it('undrain after the release rejoins', async () => {
    drain.drain();
    await drain.drained();
    await drain.undrain();
    expect(source.calls).toEqual(['release', 'rejoin']);
    expect(drain.current()).toMatchObject({ role: 'leader', token: 8n });
    expect(drain.status().phase).toBe('active');
  });

  it('shows fenced (not draining) when the source is fenced during a drain', () => {
    running = 1;
    drain.drain();
    source.fence();
    expect(drain.current().role).toBe('fenced');
    expect(admit('gw1', drain)).toMatchObject({ admitted: false, reason: 'fenced' });
    expect(seen.map((s) => s.role)).toEqual(['draining', 'fenced']);
  });

  it('keeps refusing and retries when release fails', async () => {
    source.failRelease = 'etcd unreachable';
    drain.drain();
    expect(await until(() => drain.status().error !== null, 2000, 5)).not.toBeNull();
    expect(drain.status()).toMatchObject({ phase: 'draining', error: 'release failed: etcd unreachable' });
    expect(drain.current().role).toBe('draining');
    const done = await drain.drained();
    expect(done.phase).toBe('drained');
    expect(source.calls).toEqual(['release', 'release']);
  });

  it('a standby being drained stays standby and stops campaigning', async () => {
    source.standBy('gw2', 3n);
    drain.drain();
    expect(drain.current().role).toBe('standby');
    await drain.drained();
    expect(source.calls).toEqual(['release']);
  });
});
