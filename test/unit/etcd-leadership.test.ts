import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EtcdLeadership } from '../../src/leadership/etcd.js';
import { EtcdUnavailableError, prefixRangeEnd, type EtcdApi, type EtcdKeyValue } from '../../src/etcd/client.js';
import { MemoryEtcd, type MemoryEtcdCall } from '../../src/etcd/memory.js';
import { MemoryStore } from '../../src/etcd/memoryStore.js';
import type { LeadershipState } from '../../src/leadership/types.js';

const joiningId = (s: LeadershipState) => (s.handover?.side === 'joining' ? s.handover.id : undefined);
const successorReady = (s: LeadershipState) => (s.handover?.side === 'leaving' ? s.handover.successorReady : undefined);

/**
 * The in-memory etcd (src/etcd/memory.ts) as these tests look at it: one store, one
 * client per node that the test can cut off, every call recorded, and the store's keys
 * read directly (without a round trip, without expiring anything).
 */
class TestEtcd {
  readonly store: MemoryStore;
  readonly cut = new Set<string>();
  calls: Array<{ node: string; op: MemoryEtcdCall }> = [];

  constructor(options: { minTtlSeconds?: number } = {}) {
    this.store = new MemoryStore({ now: () => Date.now(), ...options });
  }

  client(node: string): EtcdApi {
    const client = new MemoryEtcd({}, this.store);
    client.beforeCall = async (op) => {
      await Promise.resolve();
      if (this.cut.has(node)) throw new EtcdUnavailableError(`in-memory etcd: ${node} is cut off`);
      this.calls.push({ node, op });
    };
    return client;
  }

  keys(): EtcdKeyValue[] {
    return this.store.rangePrefix('').kvs;
  }

  key(of: string): EtcdKeyValue | undefined {
    return this.keys().find((kv) => kv.value === of || kv.key.includes(`/${of}-`));
  }
}

const TTL = 2;
const MARGIN = 0.5;

function node(etcd: TestEtcd, name: string, skew = { ms: 0 }) {
  const leadership = new EtcdLeadership({
    node: name,
    cluster: 'c1',
    prefix: '/execgate',
    ttlSeconds: TTL,
    marginSeconds: MARGIN,
    api: etcd.client(name),
    now: () => Date.now() + skew.ms,
    pollIntervalMs: 100,
    retryMs: 200,
    startWaitMs: 1000,
  });
  const events: LeadershipState[] = [];
  leadership.onChange((s) => events.push(s));
  return { leadership, events, skew };
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('EtcdLeadership state machine (in-memory etcd)', () => {
  let etcd: TestEtcd;
  const started: EtcdLeadership[] = [];
  const start = async (n: ReturnType<typeof node>) => {
    started.push(n.leadership);
    const p = n.leadership.start();
    await advance(50);
    await p;
    return n;
  };

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    etcd = new TestEtcd();
  });
  afterEach(async () => {
    etcd.cut.clear();
    for (const l of started.splice(0)) {
      const p = l.stop();
      await advance(10);
      await p;
    }
    vi.useRealTimers();
  });

  it('range_end of a prefix is the prefix with its last byte incremented', () => {
    expect(Buffer.from(prefixRangeEnd('/a/leader/'), 'base64').toString()).toBe('/a/leader0');
  });

  it('a lone node leads with its key create revision as token', async () => {
    const a = await start(node(etcd, 'gw1'));
    const state = a.leadership.current();
    expect(state.role).toBe('leader');
    expect(state.leader).toBe('gw1');
    const key = etcd.keys()[0]!;
    expect(key.key).toMatch(/^\/execgate\/c1\/leader\/gw1-[0-9a-f]+$/);
    expect(state.token).toBe(key.createRevision);
  });

  it('a second node stands by and knows the leader and its token', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    await advance(300);
    const sa = a.leadership.current();
    const sb = b.leadership.current();
    expect(sb.role).toBe('standby');
    expect(sb.leader).toBe('gw1');
    expect(sb.token).toBe(sa.token);
  });

  it('the standby with the second oldest key is next in line; it moves up when the leader goes', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    const c = await start(node(etcd, 'gw3'));
    await advance(300);
    expect(b.leadership.current()).toMatchObject({ role: 'standby', successor: true });
    expect(c.leadership.current()).toMatchObject({ role: 'standby', successor: false });
    const p = a.leadership.release();
    await advance(10);
    await p;
    await advance(300);
    expect(b.leadership.current().role).toBe('leader');
    expect(c.leadership.current()).toMatchObject({ role: 'standby', leader: 'gw2', successor: true });
  });

  it('the fence deadline is the send time of the last acknowledged keepalive + granted TTL - margin', async () => {
    etcd = new TestEtcd({ minTtlSeconds: 3 }); // etcd grants more than asked: the granted TTL counts
    const a = await start(node(etcd, 'gw1'));
    await advance(5000); // several keepalives
    const lastKeepalive = etcd.calls.filter((c) => c.op === 'keepAlive').length;
    expect(lastKeepalive).toBeGreaterThan(3);
    const deadline = a.leadership.fenceDeadline;
    const now = Date.now();
    // keepalive every ttl/3 = 1 s: the last ack was sent at most ~1 s ago
    expect(deadline).toBeGreaterThan(now + 3000 - 500 - 1100);
    expect(deadline).toBeLessThanOrEqual(now + 3000 - 500);
  });

  it('a leader cut off from etcd fences itself before its lease expires, then a standby takes over with a larger token', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    await advance(300);
    const oldToken = a.leadership.current().token!;
    const leaseA = etcd.key('gw1')!.lease;
    etcd.cut.add('gw1');
    let fencedAt: number | null = null;
    let leaseGoneAt: number | null = null;
    let bLeaderAt: number | null = null;
    for (let t = 0; t < 4000; t += 10) {
      await advance(10);
      if (fencedAt === null && a.leadership.current().role === 'fenced') fencedAt = Date.now();
      // gw1's key dies with its lease (reading the store expires what is due)
      if (leaseGoneAt === null && !etcd.keys().some((kv) => kv.lease === leaseA)) leaseGoneAt = Date.now();
      if (bLeaderAt === null && b.leadership.current().role === 'leader') bLeaderAt = Date.now();
    }
    expect(a.events.some((e) => e.role === 'fenced')).toBe(true);
    expect(fencedAt).not.toBeNull();
    expect(leaseGoneAt).not.toBeNull();
    expect(bLeaderAt).not.toBeNull();
    expect(fencedAt!).toBeLessThan(leaseGoneAt!);
    expect(fencedAt!).toBeLessThan(bLeaderAt!);
    expect(b.leadership.current().token! > oldToken).toBe(true);
    // while cut off, the fenced node stays fenced and never leads
    expect(a.leadership.current().role).toBe('fenced');
    expect(a.leadership.current().reason).toMatch(/etcd unreachable/);
    // reconnected: a new key, and it follows the new leader
    etcd.cut.delete('gw1');
    await advance(2000);
    const sa = a.leadership.current();
    expect(sa.role).toBe('standby');
    expect(sa.leader).toBe('gw2');
    const keysA = etcd.keys().filter((kv) => kv.value === 'gw1');
    expect(keysA).toHaveLength(1);
    expect(keysA[0]!.lease).not.toBe(leaseA);
    expect(keysA[0]!.createRevision > b.leadership.current().token!).toBe(true);
  });

  it('current() is exact: past the deadline it answers fenced before any timer fires', async () => {
    const skew = { ms: 0 };
    const a = await start(node(etcd, 'gw1', skew));
    expect(a.leadership.current().role).toBe('leader');
    skew.ms = 10_000; // the process was paused: the clock jumped, no timer ran yet
    const state = a.leadership.current();
    expect(state.role).toBe('fenced');
    expect(state.token).toBeNull();
    expect(a.events.at(-1)!.role).toBe('fenced');
  });

  it('a node fenced while its old key still exists waits for it to expire, then leads with a new token', async () => {
    const skew = { ms: 0 };
    const a = await start(node(etcd, 'gw1', skew));
    const first = a.leadership.current().token!;
    skew.ms = 10_000; // fenced by its own clock; etcd still holds the old lease
    expect(a.leadership.current().role).toBe('fenced');
    await advance(300);
    const waiting = a.leadership.current();
    expect(waiting.role).toBe('standby');
    expect(waiting.leader).toBeUndefined();
    expect(waiting.reason).toMatch(/previous lease/);
    await advance(3000); // the old lease expires in etcd
    const again = a.leadership.current();
    expect(again.role).toBe('leader');
    expect(again.token! > first).toBe(true);
  });

  it('a keepalive answered with TTL 0 (lease gone) fences at once and the node campaigns with a new key and token', async () => {
    const a = await start(node(etcd, 'gw1'));
    const first = a.leadership.current().token!;
    etcd.store.revoke(etcd.keys()[0]!.lease); // revoked behind our back
    await advance(800);
    expect(a.events.map((e) => e.role)).toContain('fenced');
    await advance(500);
    const again = a.leadership.current();
    expect(again.role).toBe('leader');
    expect(again.token! > first).toBe(true);
  });

  it('etcd unreachable at start: standby with a clear reason, recovering by itself', async () => {
    etcd.cut.add('gw1');
    const a = await start(node(etcd, 'gw1'));
    await advance(1000);
    const s = a.leadership.current();
    expect(s.role).toBe('standby');
    expect(s.reason).toMatch(/^etcd unreachable: /);
    etcd.cut.delete('gw1');
    await advance(3000);
    expect(a.leadership.current().role).toBe('leader');
  });

  it('stop() revokes the lease so the standby leads at once', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    await advance(300);
    const t0 = Date.now();
    const p = a.leadership.stop();
    await advance(10);
    await p;
    let took = 0;
    while (b.leadership.current().role !== 'leader' && took < 5000) {
      await advance(10);
      took = Date.now() - t0;
    }
    expect(b.leadership.current().role).toBe('leader');
    expect(took).toBeLessThan(500); // well under the 2 s TTL
  });

  it('a leader announcing its handover keeps its key and token; standbys see it', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    await advance(300);
    const token = a.leadership.current().token;
    const p = a.leadership.announceHandover();
    await advance(5);
    await p;
    await advance(100);
    expect(a.leadership.current()).toMatchObject({ role: 'leader', token });
    expect(b.leadership.current()).toMatchObject({ role: 'standby', leader: 'gw1', token, successor: true, handover: { side: 'joining' } });
  });

  it('the next in line says ready for this handover only; the leader sees it within a fast poll', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    const c = await start(node(etcd, 'gw3'));
    await advance(300);
    const p = a.leadership.announceHandover();
    await advance(5);
    await p;
    await advance(100); // b (next in line) polls at 50 ms, and at 20 ms once it saw the announce
    const sb = b.leadership.current();
    expect(sb).toMatchObject({ handover: { side: 'joining' }, successor: true });
    expect(joiningId(sb)).toBe(etcd.key('gw1')!.modRevision.toString());
    expect(successorReady(a.leadership.current())).toBeUndefined();

    // Only the next in line may answer, and only for the announce it saw.
    await c.leadership.announceReady(joiningId(sb)!);
    await b.leadership.announceReady('1');
    await advance(100);
    expect(successorReady(a.leadership.current())).toBeUndefined();

    await b.leadership.announceReady(joiningId(sb)!);
    const t0 = Date.now();
    while (successorReady(a.leadership.current()) !== true && Date.now() - t0 < 1000) await advance(1);
    expect(Date.now() - t0).toBeLessThanOrEqual(25); // the leader polls every 20 ms while handing over (pollIntervalMs is 100)
    expect(a.leadership.current()).toMatchObject({ role: 'leader', handover: { side: 'leaving', successorReady: true } });

    // The leader goes: the next in line takes over within a fast poll, with a larger token.
    const token = a.leadership.current().token!;
    const r = a.leadership.release();
    await advance(1);
    await r;
    const t1 = Date.now();
    while (b.leadership.current().role !== 'leader' && Date.now() - t1 < 1000) await advance(1);
    expect(Date.now() - t1).toBeLessThanOrEqual(25);
    expect(b.leadership.current().token! > token).toBe(true);
    expect(successorReady(b.leadership.current())).toBeUndefined();
  });

  it('a ready answer to an earlier handover does not count for the next one', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    await advance(300);
    await a.leadership.announceHandover();
    await advance(100);
    await b.leadership.announceReady(joiningId(b.leadership.current())!);
    await advance(50);
    expect(successorReady(a.leadership.current())).toBe(true);
    // A second announce (a later drain of the same term) has a new id: b's old answer is stale.
    await a.leadership.announceHandover();
    await advance(50);
    expect(successorReady(a.leadership.current())).toBeUndefined();
  });

  it('a standby with a command waiting for the lead polls fast and takes over within ~20 ms of a release', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    await advance(300);
    const leadIn = async () => {
      const t0 = Date.now();
      while (b.leadership.current().role !== 'leader' && Date.now() - t0 < 5000) await advance(1);
      return Date.now() - t0;
    };
    const endWait = b.leadership.awaitLead();
    await advance(250); // b's polling is now at the fast pace
    const p = a.leadership.release();
    await advance(1);
    await p;
    expect(await leadIn()).toBeLessThanOrEqual(25); // pollIntervalMs is 100 here
    endWait();
    endWait(); // idempotent
    await b.leadership.release();
    await a.leadership.rejoin();
    await advance(300);
    expect(a.leadership.current().role).toBe('leader');
  });

  it('release() hands over and stays out until rejoin()', async () => {
    const a = await start(node(etcd, 'gw1'));
    const b = await start(node(etcd, 'gw2'));
    await advance(300);
    const p = a.leadership.release();
    await advance(10);
    await p;
    await advance(500);
    expect(a.leadership.current().role).toBe('standby');
    expect(a.leadership.current().reason).toMatch(/released/);
    expect(b.leadership.current().role).toBe('leader');
    expect(etcd.keys().filter((kv) => kv.value === 'gw1')).toHaveLength(0);
    await a.leadership.rejoin();
    await advance(500);
    const sa = a.leadership.current();
    expect(sa.role).toBe('standby');
    expect(sa.leader).toBe('gw2');
  });

  it('tokens strictly increase over many forced transitions', async () => {
    const nodes = [await start(node(etcd, 'gw1')), await start(node(etcd, 'gw2'))];
    const tokens: bigint[] = [];
    for (let i = 0; i < 20; i++) {
      await advance(300);
      const leader = nodes.find((n) => n.leadership.current().role === 'leader')!;
      expect(leader).toBeDefined();
      tokens.push(leader.leadership.current().token!);
      // alternate: cut off (fence by deadline) or release/rejoin
      if (i % 2 === 0) {
        etcd.cut.add(leader.leadership === nodes[0]!.leadership ? 'gw1' : 'gw2');
        await advance(2500);
        etcd.cut.clear();
      } else {
        const p = leader.leadership.release();
        await advance(10);
        await p;
        await advance(300);
        await leader.leadership.rejoin();
      }
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!).toBe(true);
  });
});
