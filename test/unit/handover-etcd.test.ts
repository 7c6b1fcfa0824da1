import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EtcdLeadership } from '../../src/leadership/etcd.js';
import { DrainController, type DrainOptions } from '../../src/leadership/handover/drain.js';
import { admit } from '../../src/leadership/gate.js';
import { trackValue, TRACK_BEHIND, TRACK_LEADER, TRACK_SUCCESSOR } from '../../src/leadership/keepalived/trackFile.js';
import { MemoryEtcd } from '../../src/etcd/memory.js';
import type { LeadershipState } from '../../src/leadership/types.js';
import { until } from '../helpers/until.js';

/**
 * The planned handover end to end in one process: DrainController over EtcdLeadership
 * over the in-memory etcd, on vitest's fake clock (MemoryEtcd's leases expire on the
 * same Date.now). Each node has its own client, which a test can cut off.
 */

const TTL = 2;
const MARGIN = 0.5;

interface Node {
  name: string;
  client: MemoryEtcd;
  source: EtcdLeadership;
  drain: DrainController;
  events: LeadershipState[];
  running: number;
  vipConnections: number;
  vipLocal: boolean;
  /** holdVip() calls: true holds new VIP connections, false admits them again. */
  holds: boolean[];
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

/** until() on the fake clock, 1 ms a step; fails the test naming what did not happen. */
async function reached(what: string, check: () => boolean, ms = 5000): Promise<number> {
  const took = await until(check, ms, 1, advance);
  if (took === null) throw new Error(`${what}: not within ${ms} ms`);
  return took;
}

describe('planned handover against the in-memory etcd (fake clock)', () => {
  let etcd: MemoryEtcd;
  let nodes: Node[];
  let leadersSeen: string[][];

  function makeNode(name: string, mode: 'fast' | 'strict' = 'fast', extra: Partial<DrainOptions> = {}): Node {
    const client = etcd.client();
    const source = new EtcdLeadership({ node: name, cluster: 'c1', prefix: '/execgate', ttlSeconds: TTL, marginSeconds: MARGIN, api: client, pollIntervalMs: 100, retryMs: 200, startWaitMs: 1000 });
    const node: Node = { name, client, source, drain: undefined as unknown as DrainController, events: [], running: 0, vipConnections: 0, vipLocal: false, holds: [] };
    node.drain = new DrainController(source, {
      self: name,
      mode,
      running: () => node.running,
      terminate: async () => {
        node.running = 0;
      },
      timeoutSeconds: 60,
      pollMs: 10,
      handoverMs: 1000,
      vipConnections: () => node.vipConnections,
      forwarded: () => 0,
      undecidedBefore: () => false,
      holdVip: async (hold) => {
        node.holds.push(hold);
      },
      vipLocal: () => node.vipLocal,
      vipHoldMs: 60_000,
      ...extra,
    });
    node.drain.onChange((s) => node.events.push(s));
    nodes.push(node);
    return node;
  }

  async function startAll(...ns: Node[]): Promise<void> {
    for (const n of ns) {
      const p = n.drain.start();
      await advance(50);
      await p;
    }
    await advance(300);
  }

  /** Drains a leader that holds the VIP, with one command running and `connections` open on the VIP. */
  function drainHoldingVip(n: Node, connections: number): void {
    n.vipLocal = true;
    n.running = 1;
    n.vipConnections = connections;
    n.drain.drain();
  }

  /** Every millisecond the test advances, at most one node may admit commands. */
  function admitting(): string[] {
    return nodes.filter((n) => admit(n.name, n.drain).admitted).map((n) => n.name);
  }

  async function step(ms: number): Promise<void> {
    for (let i = 0; i < ms; i++) {
      await advance(1);
      const now = admitting();
      if (now.length > 1) leadersSeen.push(now);
    }
  }

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    etcd = new MemoryEtcd();
    nodes = [];
    leadersSeen = [];
  });
  afterEach(async () => {
    for (const n of nodes) {
      n.client.partition(false);
      const p = n.drain.stop();
      await advance(10);
      await p;
    }
    vi.useRealTimers();
  });

  it('fast: admission moves at once to a larger token while the old leader finishes its command under its own lease', async () => {
    const [a, b] = [makeNode('gw1'), makeNode('gw2')];
    await startAll(a, b);
    const tokenA = a.drain.current().token!;
    expect(a.drain.current()).toMatchObject({ role: 'leader', next: 'gw2' });
    a.running = 1; // a 20 s command runs on gw1
    a.drain.drain();
    expect(a.drain.forwardTarget()).toBe('gw2'); // new connections go to the next in line at once
    const handoff = await reached('gw2 leads', () => b.drain.current().role === 'leader');
    expect(handoff).toBeLessThanOrEqual(60); // resign + one successor poll (50 ms)
    expect(b.drain.current().token! > tokenA).toBe(true);
    expect(a.drain.current()).toMatchObject({ role: 'draining', handover: { side: 'leaving', admitting: false } });
    expect(admit('gw1', a.drain).admitted).toBe(false);
    expect(a.drain.forwardTarget()).toBe('gw2');
    // The old command keeps running for 20 s: gw1's lease is renewed all along, nobody fences it.
    await step(20_000);
    expect(leadersSeen).toEqual([]);
    expect(a.events.some((s) => s.role === 'fenced')).toBe(false);
    expect(a.drain.status().phase).toBe('handover');
    a.running = 0;
    await reached('gw1 drained', () => a.drain.status().phase === 'drained');
    expect(a.drain.current().role).toBe('standby');
    expect(b.drain.current()).toMatchObject({ role: 'leader', token: b.drain.current().token });
    // Undrain: gw1 campaigns again behind gw2, with a new key.
    await a.drain.undrain();
    await advance(300);
    expect(a.drain.current()).toMatchObject({ role: 'standby', leader: 'gw2', successor: true });
    expect(a.drain.forwardTarget()).toBeNull();
  });

  it('fast: while the resign is still on its way back, the old leader shows draining, never standby (standby would end its commands)', async () => {
    const [a, b] = [makeNode('gw1'), makeNode('gw2')];
    await startAll(a, b);
    // gw1's resign reaches etcd at once, its answer 1 s later (a busy node): meanwhile its
    // own poll sees gw2 lead on gw1's resigned mark.
    const txn = a.client.txn.bind(a.client);
    a.client.txn = async (t) => {
      const r = await txn(t);
      await new Promise((res) => setTimeout(res, 1000));
      return r;
    };
    a.running = 1;
    a.events.length = 0;
    a.drain.drain();
    await reached('gw2 leads', () => b.drain.current().role === 'leader');
    await step(1500);
    expect(a.events.map((s) => s.role).filter((r) => r !== 'draining')).toEqual([]);
    expect(a.drain.current()).toMatchObject({ role: 'draining', handover: { side: 'leaving', admitting: false } });
    expect(leadersSeen).toEqual([]);
  });

  it("strict: the next node leads only after the old leader's last command ended (token order kept)", async () => {
    const [a, b] = [makeNode('gw1', 'strict'), makeNode('gw2', 'strict')];
    await startAll(a, b);
    a.running = 1;
    a.drain.drain();
    expect(a.drain.forwardTarget()).toBeNull();
    await step(5000);
    expect(b.drain.current().role).toBe('standby');
    const ended = Date.now();
    a.running = 0;
    await reached('gw2 leads', () => b.drain.current().role === 'leader');
    expect(Date.now()).toBeGreaterThanOrEqual(ended);
    expect(leadersSeen).toEqual([]);
  });

  it('a resigned node cut off from etcd kills its commands (fenced) before its lease can expire', async () => {
    const [a, b] = [makeNode('gw1'), makeNode('gw2')];
    await startAll(a, b);
    a.running = 1;
    a.drain.drain();
    await reached('gw2 leads', () => b.drain.current().role === 'leader');
    a.client.partition(true);
    const cutAt = Date.now();
    await reached('gw1 fenced', () => a.events.some((s) => s.role === 'fenced'), 5000);
    // etcd can expire the lease TTL after the last acknowledged keepalive, which was at most ttl/3 before the cut.
    expect(Date.now() - cutAt).toBeLessThanOrEqual(TTL * 1000 - MARGIN * 1000);
    expect(b.drain.current().role).toBe('leader');
  });

  it('a stale "ready" from an earlier announce does not end a strict handover early', async () => {
    const [a, b] = [makeNode('gw1', 'strict'), makeNode('gw2', 'strict')];
    await startAll(a, b);
    await a.source.announceHandover();
    await advance(100);
    const first = b.source.current().handover;
    expect(first).toMatchObject({ side: 'joining' });
    await b.source.announceReady((first as { id: string }).id);
    await advance(50);
    expect(a.source.current().handover).toMatchObject({ side: 'leaving', successorReady: true });
    await a.source.announceHandover(); // a later announce (new mod revision)
    await advance(50);
    expect(a.source.current().handover).toBeUndefined();
  });

  it('a successor that dies mid-handover: the third node leads with a larger token and forwarding follows it', async () => {
    const [a, b, c] = [makeNode('gw1'), makeNode('gw2'), makeNode('gw3')];
    await startAll(a, b, c);
    a.running = 1;
    a.drain.drain();
    await reached('gw2 leads', () => b.drain.current().role === 'leader');
    const tokenB = b.drain.current().token!;
    expect(a.drain.forwardTarget()).toBe('gw2');
    b.client.partition(true); // gw2 dies: its lease expires, nobody else may lead before that
    await reached('gw3 leads', () => c.drain.current().role === 'leader', 5000);
    expect(c.drain.current().token! > tokenB).toBe(true);
    expect(b.drain.current().role).not.toBe('leader');
    await reached('gw1 forwards to gw3', () => a.drain.forwardTarget() === 'gw3', 1000);
    expect(leadersSeen).toEqual([]);
  });

  it('a drain during a failover: the drained standby stays out and the third node takes over', async () => {
    const [a, b, c] = [makeNode('gw1'), makeNode('gw2'), makeNode('gw3')];
    await startAll(a, b, c);
    a.client.partition(true); // the leader is lost
    await advance(100);
    b.drain.drain(); // the operator drains the next in line meanwhile
    await reached('gw2 drained', () => b.drain.status().phase === 'drained', 3000);
    await reached('gw3 leads', () => c.drain.current().role === 'leader', 5000);
    await step(1000);
    expect(b.drain.current().role).toBe('standby');
    expect(leadersSeen).toEqual([]);
    expect(a.events.some((s) => s.role === 'fenced')).toBe(true);
  });

  it('the VIP stays with the resigned node while a connection that came in on it is open; the new leader does not claim it', async () => {
    const [a, b, c] = [makeNode('gw1'), makeNode('gw2'), makeNode('gw3')];
    await startAll(a, b, c);
    a.running = 1;
    a.vipConnections = 2;
    a.drain.drain();
    await reached('gw2 leads', () => b.drain.current().role === 'leader');
    await advance(150);
    const trackOf = (n: Node) => {
      const s = n.drain.current();
      return trackValue({
        role: s.role,
        self: n.name,
        ...(s.leader ? { leader: s.leader } : {}),
        steppingDown: false,
        stopping: false,
        unhealthy: false,
        handover: s.handover?.side === 'leaving' && s.handover.trafficAway,
        vipHeldElsewhere: s.handover?.side === 'joining' && s.handover.vipHeldBy !== undefined,
        ...(s.successor !== undefined ? { successor: s.successor } : {}),
      });
    };
    expect(trackOf(a)).toBe(TRACK_LEADER);
    expect(trackOf(b)).toBe(TRACK_SUCCESSOR);
    // gw3 is gw2's next in line, but is not lifted: with both at +50, gw3's higher base
    // priority won the VIP's election for a moment when gw1 let it go (lab, 30 resets).
    expect(c.drain.current()).toMatchObject({ role: 'standby', leader: 'gw2', successor: true });
    expect(trackOf(c)).toBe(TRACK_BEHIND);
    a.vipConnections = 0;
    await advance(20);
    expect(trackOf(a)).toBe(-254);
    await reached('gw2 claims the VIP', () => trackOf(b) === TRACK_LEADER, 1000);
    await reached('gw3 is lifted as next in line', () => trackOf(c) === TRACK_SUCCESSOR, 1000);
    a.running = 0;
    await reached('gw1 drained', () => a.drain.status().phase === 'drained');
  });

  it('a VIP drain holds new VIP connections from its start until the VIP has left, without delaying the handoff', async () => {
    const [a, b] = [makeNode('gw1'), makeNode('gw2')];
    await startAll(a, b);
    drainHoldingVip(a, 2);
    const handoff = await reached('gw2 leads', () => b.drain.current().role === 'leader');
    expect(handoff).toBeLessThanOrEqual(60);
    expect(a.holds).toEqual([true]);
    await step(5000);
    expect(a.holds).toEqual([true]); // held while the connections that came in on the VIP are open
    a.vipConnections = 0; // the last one ended: the VIP is released ...
    await advance(50);
    expect(a.holds).toEqual([true]); // ... but held connections must not land here before it has left
    a.vipLocal = false;
    await reached('hold lifted', () => a.holds.length === 2);
    expect(a.holds).toEqual([true, false]);
    expect(a.drain.status().phase).toBe('handover'); // gw1's own command still runs
    a.running = 0;
    await reached('gw1 drained', () => a.drain.status().phase === 'drained');
    expect(a.holds).toEqual([true, false]);
    expect(leadersSeen).toEqual([]);
  });

  it('a VIP hold ends at vipHoldSeconds even if the connections on the VIP stay open', async () => {
    const [a, b] = [makeNode('gw1', 'fast', { vipHoldMs: 3000 }), makeNode('gw2')];
    await startAll(a, b);
    drainHoldingVip(a, 1);
    await reached('held', () => a.holds.length === 1);
    const held = await reached('hold limit', () => a.holds.length === 2, 4000);
    expect(held).toBeGreaterThanOrEqual(2900);
    expect(a.holds).toEqual([true, false]);
    expect(b.drain.current().role).toBe('leader');
    a.vipConnections = 0;
    a.running = 0;
    await reached('gw1 drained', () => a.drain.status().phase === 'drained');
    expect(a.holds).toEqual([true, false]);
  });

  it('a VIP hold that cannot be set up leaves the drain as it was (forwarding); a node without the VIP never holds', async () => {
    const [a, b] = [
      makeNode('gw1', 'fast', {
        holdVip: async () => {
          throw new Error('cannot run /usr/bin/python3');
        },
      }),
      makeNode('gw2'),
    ];
    await startAll(a, b);
    drainHoldingVip(a, 1);
    await reached('gw2 leads', () => b.drain.current().role === 'leader');
    expect(a.drain.forwardTarget()).toBe('gw2');
    a.vipConnections = 0;
    a.running = 0;
    await reached('gw1 drained', () => a.drain.status().phase === 'drained');
    await a.drain.undrain();
    await advance(300);
    b.running = 1;
    b.drain.drain(); // gw2 leads but the VIP is not on it
    await reached('gw1 leads', () => a.drain.current().role === 'leader');
    expect(b.holds).toEqual([]);
    b.running = 0;
  });

  it('strict, commands pinned to the VIP: new VIP connections are held until the drain is over; one accepted just before the hold still gets its command', async () => {
    let undecided = true;
    const a = makeNode('gw1', 'strict', { pinned: () => a.vipConnections, undecidedBefore: () => undecided });
    const b = makeNode('gw2', 'strict');
    await startAll(a, b);
    drainHoldingVip(a, 1);
    await reached('held', () => a.holds.length === 1);
    expect(admit('gw1', a.drain).admitted).toBe(true); // accepted before the hold, it asks now
    undecided = false;
    await advance(20);
    expect(admit('gw1', a.drain).admitted).toBe(false);
    expect(a.drain.current().role).toBe('draining');
    await step(3000);
    expect(b.drain.current().role).toBe('standby');
    a.running = 0;
    a.vipConnections = 0;
    await reached('gw1 drained', () => a.drain.status().phase === 'drained', 10_000);
    await reached('lifted', () => a.holds.length === 2);
    expect(a.holds).toEqual([true, false]);
    await reached('gw2 leads', () => b.drain.current().role === 'leader');
    expect(leadersSeen).toEqual([]);
  });
});
