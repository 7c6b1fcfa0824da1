import { describe, it, expect } from 'vitest';
import { pino } from 'pino';
import { DrainController } from '../../src/leadership/handover/drain.js';
import { admit, admitWaiting } from '../../src/leadership/gate.js';
import { trackValue } from '../../src/leadership/keepalived/trackFile.js';
import { HealthStepDown } from '../../src/leadership/healthStepDown.js';
import { FakeLeadership } from '../helpers/fakeLeadership.js';
import { AllProbes, LoadBalancerProbe, SuccessorTraffic, VipProbe } from '../../src/leadership/handover/probes.js';
import { until } from '../helpers/until.js';
import type { LeadershipState } from '../../src/leadership/types.js';

describe('zero-failure handover', () => {
  it('a drained leader keeps admitting during the handover while the track file already says -254', async () => {
    const source = new FakeLeadership('gw1');
    let running = 0;
    const drain = new DrainController(source, { running: () => running, terminate: async () => {}, timeoutSeconds: 60, pollMs: 10, handoverMs: 300 });
    drain.drain();
    await until(() => drain.status().phase === 'handover', 1000, 5);
    const state = drain.current();
    expect(state).toMatchObject({ role: 'draining', handover: { side: 'leaving', admitting: true, trafficAway: true }, token: 7n });
    expect(admit('gw1', drain)).toEqual({ admitted: true, token: 7n });
    expect(trackValue({ role: state.role, self: 'gw1', leader: 'gw1', steppingDown: false, stopping: false, unhealthy: false, handover: true })).toBe(-254);
    running = 1; // a command that arrived during the handover holds the release back
    await new Promise((r) => setTimeout(r, 400));
    expect(source.calls).not.toContain('release');
    running = 0;
    await drain.drained();
    expect(source.calls).toContain('release');
    expect(drain.status().phase).toBe('drained');
    await drain.stop();
  });

  it('in a cluster a drain hands traffic over at once, even while commands run, and releases after them', async () => {
    const source = new FakeLeadership('gw1');
    let running = 2;
    const terminated: string[] = [];
    const drain = new DrainController(source, {
      running: () => running,
      terminate: async (why) => void terminated.push(why),
      timeoutSeconds: 60,
      pollMs: 10,
      handoverMs: 100,
      traffic: { begin: () => {}, gone: () => true },
    });
    drain.drain();
    expect(drain.status().phase).toBe('handover');
    expect(admit('gw1', drain)).toEqual({ admitted: true, token: 7n }); // a straggler still runs here
    await new Promise((r) => setTimeout(r, 200));
    expect(source.calls).toEqual([]); // not while commands run
    running = 0;
    await drain.drained();
    expect(source.calls).toEqual(['release']);
    expect(terminated).toEqual([]);
    await drain.stop();
  });

  it('commands that came in on the VIP keep the traffic here (moving the VIP would reset them) until they end', async () => {
    const source = new FakeLeadership('gw1');
    let running = 2;
    let pinned = 1;
    const drain = new DrainController(source, {
      running: () => running,
      pinned: () => pinned,
      terminate: async () => {},
      timeoutSeconds: 60,
      pollMs: 10,
      handoverMs: 100,
      traffic: { begin: () => {}, gone: () => true },
    });
    drain.drain();
    expect(drain.current()).toMatchObject({ role: 'draining' });
    expect(drain.current().handover).toBeUndefined(); // track file stays 100: the VIP stays
    expect(admit('gw1', drain)).toMatchObject({ admitted: false, reason: 'draining' });
    pinned = 0; // the VIP command ended; one that came through HAProxy still runs
    running = 1;
    await until(() => drain.status().phase === 'handover', 1000, 5);
    running = 0;
    await drain.drained();
    expect(source.calls).toEqual(['release']);
    await drain.stop();
  });

  it('the handover ends as soon as the traffic probe says traffic has left and nothing runs', async () => {
    const source = new FakeLeadership('gw1');
    let gone = false;
    let begun = 0;
    const drain = new DrainController(source, {
      running: () => 0,
      terminate: async () => {},
      timeoutSeconds: 60,
      pollMs: 10,
      handoverMs: 5000,
      traffic: { begin: () => void begun++, gone: () => gone },
    });
    const t0 = Date.now();
    drain.drain();
    await until(() => drain.status().phase === 'handover', 1000, 5);
    expect(begun).toBe(1);
    setTimeout(() => (gone = true), 100);
    await drain.drained();
    expect(source.calls).toEqual(['release']);
    expect(Date.now() - t0).toBeLessThan(1000); // not the 5 s window
    await drain.stop();
  });

  it('counts a load balancer as gone once it was refused since the handover began, after a settle time', () => {
    let now = 0;
    const probe = new LoadBalancerProbe(['198.18.0.20', '198.18.0.21'], 100, () => now);
    probe.record('::ffff:198.18.0.20', 404); // before begin(): ignored
    probe.begin();
    expect(probe.gone()).toBe(false);
    probe.record('::ffff:198.18.0.20', 404);
    now = 50;
    probe.record('198.18.0.20', 200); // served again: it balances to us again
    probe.record('198.18.0.99', 404); // not a load balancer
    probe.record('198.18.0.21', 404);
    probe.record('198.18.0.20', 404);
    now = 149;
    expect(probe.gone()).toBe(false);
    now = 150;
    expect(probe.gone()).toBe(true);
    const vip = { local: true };
    const both = new AllProbes([
      new VipProbe(
        () => vip.local,
        200,
        () => now,
      ),
      probe,
    ]);
    expect(both.gone()).toBe(false);
    vip.local = false;
    expect(both.gone()).toBe(false); // the next master may not have claimed it yet
    now = 349;
    expect(both.gone()).toBe(false);
    now = 350;
    expect(both.gone()).toBe(true);
  });

  it('waits for connections accepted before the load balancers were refused to reach the gate', () => {
    let now = 0;
    const pending = new Map<string, number>([
      ['early', 90],
      ['late', 400],
    ]);
    const probe = new LoadBalancerProbe(
      ['198.18.0.20'],
      50,
      () => now,
      (instant) => [...pending.values()].some((t) => t < instant),
    );
    probe.begin();
    now = 100;
    probe.record('198.18.0.20', 404);
    now = 150;
    expect(probe.gone()).toBe(false); // "early" (accepted at 90) has not asked for its command yet
    pending.delete('early');
    expect(probe.gone()).toBe(true); // "late" came after the refusal settled: not from this balancer's traffic
  });

  it('the next in line says ready once every load balancer got a 200 for this handover', () => {
    const told: string[] = [];
    const traffic = new SuccessorTraffic(['198.18.0.20', '198.18.0.21'], 1, (id) => told.push(id));
    const next = (handoverId?: string): LeadershipState => ({ role: 'standby', token: 7n, since: 0, successor: true, ...(handoverId ? { handover: { side: 'joining', id: handoverId } } : {}) });
    traffic.record('198.18.0.20', 404, next()); // no handover yet
    traffic.record('198.18.0.20', 200, next('41'));
    traffic.record('198.18.0.99', 200, next('41')); // not a load balancer
    expect(told).toEqual([]);
    traffic.record('::ffff:198.18.0.21', 200, next('41'));
    expect(told).toEqual(['41']);
    traffic.record('198.18.0.21', 200, next('41'));
    expect(told).toEqual(['41']); // once per handover
    traffic.record('198.18.0.20', 200, next('44')); // a new announce starts over
    expect(told).toEqual(['41']);
    traffic.record('198.18.0.21', 200, next('44'));
    expect(told).toEqual(['41', '44']);
    traffic.record('198.18.0.20', 200, { ...next('45'), successor: false }); // not next in line: never
    traffic.record('198.18.0.21', 200, { ...next('45'), successor: false });
    expect(told).toEqual(['41', '44']);

    // With rise 2 a DOWN server needs two passing checks in a row from each balancer.
    const rise2: string[] = [];
    const slow = new SuccessorTraffic(['198.18.0.20'], 2, (id) => rise2.push(id));
    slow.record('198.18.0.20', 200, next('50'));
    slow.record('198.18.0.20', 404, next('50')); // not in a row
    slow.record('198.18.0.20', 200, next('50'));
    expect(rise2).toEqual([]);
    slow.record('198.18.0.20', 200, next('50'));
    expect(rise2).toEqual(['50']);
  });

  it('a standby asks its source to look more often while a command waits for the lead', async () => {
    const next = new FakeLeadership('gw2', { role: 'standby', token: 7n, leader: 'gw1' });
    let waiting = 0;
    const hurried = Object.assign(next, { awaitLead: () => (waiting++, () => void waiting--) });
    const drain = new DrainController(hurried, { running: () => 0, terminate: async () => {}, timeoutSeconds: 60 });
    const decision = admitWaiting('gw2', drain, 2000);
    expect(waiting).toBe(1);
    next.lead(8n);
    expect(await decision).toEqual({ admitted: true, token: 8n });
    expect(waiting).toBe(0);
  });

  it('a standby waits for the lead instead of refusing, and refuses after the wait', async () => {
    const next = new FakeLeadership('gw2', { role: 'standby', token: 7n, leader: 'gw1' });
    const waiting = admitWaiting('gw2', next, 2000);
    setTimeout(() => next.lead(8n), 100);
    expect(await waiting).toEqual({ admitted: true, token: 8n });

    const lonely = new FakeLeadership('gw3', { role: 'standby', token: 8n, leader: 'gw2' });
    const t0 = Date.now();
    const refused = await admitWaiting('gw3', lonely, 200);
    expect(refused).toMatchObject({ admitted: false, reason: 'standby' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);

    const fenced = new FakeLeadership('gw4', { role: 'fenced', token: null });
    const t1 = Date.now();
    expect(await admitWaiting('gw4', fenced, 5000)).toMatchObject({ admitted: false, reason: 'fenced' });
    expect(Date.now() - t1).toBeLessThan(100); // fenced nodes are refused at once
  });

  it('an unhealthy leader stops its commands and releases; it rejoins once healthy', async () => {
    const source = new FakeLeadership('gw1');
    const drain = new DrainController(source, { running: () => 0, terminate: async () => {}, timeoutSeconds: 60 });
    let ok = false;
    const terminated: string[] = [];
    const watch = new HealthStepDown({
      check: async () => ({ ok, reason: ok ? null : 'disk full' }),
      leadership: drain,
      track: null,
      terminate: async (why) => void terminated.push(why),
      log: pino({ level: 'silent' }),
      intervalMs: 10,
      failures: 3,
      recoveries: 2,
    });
    watch.start();
    await until(() => source.calls.includes('release'), 2000, 5);
    expect(terminated).toEqual(['unhealthy: disk full']);
    ok = true;
    await until(() => source.calls.includes('rejoin'), 2000, 5);
    expect(source.calls).toEqual(['release', 'rejoin']);
    watch.stop();
  });
});
