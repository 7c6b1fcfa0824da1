import { describe, it, expect, afterEach } from 'vitest';
import pino from 'pino';
import type { EtcdApi } from '../../src/etcd/api.js';
import { FakeClock, MemoryEtcd } from '../../src/etcd/memory.js';
import { EtcdClaimStore } from '../../src/runonce/etcdClaimStore.js';

/** Just what EtcdClaimStore calls: leases granted after a delay, every txn succeeds. */
function slowGrantEtcd() {
  const granted: Array<{ id: string; ttl: number }> = [];
  const kept: string[] = [];
  let next = 1;
  const client = {
    async grantLease(ttlSeconds: number) {
      await new Promise((r) => setTimeout(r, 20));
      const id = String(next++);
      granted.push({ id, ttl: ttlSeconds });
      return { id, ttlSeconds };
    },
    async keepAlive(id: string) {
      kept.push(id);
      return { ttlSeconds: 1 };
    },
    async revokeLease() {},
    async txn() {
      return { succeeded: true, responses: [], revision: 7n };
    },
  };
  return { client: client as unknown as EtcdApi, granted, kept };
}

describe('EtcdClaimStore liveness lease', () => {
  let store: EtcdClaimStore | null = null;
  afterEach(async () => {
    await store?.close();
  });

  it('concurrent first claims share one liveness lease, and only that one is kept alive', async () => {
    const etcd = slowGrantEtcd();
    store = new EtcdClaimStore(etcd.client, 600, 1, pino({ level: 'silent' }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store!.claim(`/k/${i}`, { node: 'gw1', start: new Date().toISOString() })));
    const liveness = etcd.granted.filter((g) => g.ttl === 1);
    expect(liveness).toHaveLength(1);
    expect(etcd.granted.filter((g) => g.ttl === 600)).toHaveLength(20); // one retention lease per claim
    await new Promise((r) => setTimeout(r, 800));
    expect(etcd.kept.length).toBeGreaterThan(0);
    expect(new Set(etcd.kept)).toEqual(new Set([liveness[0]!.id]));
  });
});

const keysOf = async (etcd: MemoryEtcd, prefix = '/') => (await etcd.rangePrefix(prefix)).kvs.map((kv) => kv.key);

describe('EtcdClaimStore on MemoryEtcd', () => {
  const stores: EtcdClaimStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  it('one claim wins with the revision as token; the other sees the winner, alive until its liveness lease lapses', async () => {
    const clock = new FakeClock();
    const etcd = new MemoryEtcd({ now: clock.now });
    const [node1, node2] = [etcd.client(), etcd.client()];
    const log = pino({ level: 'silent' });
    const gw1 = new EtcdClaimStore(node1, 600, 2, log);
    const gw2 = new EtcdClaimStore(node2, 600, 2, log);
    stores.push(gw1, gw2);
    const record = { node: 'gw1', start: '2026-01-01T00:00:00Z' };
    const won = await gw1.claim('/runonce/7001', record);
    expect(won).toEqual({ won: true, token: etcd.revision });
    const lost = await gw2.claim('/runonce/7001', { node: 'gw2', start: '2026-01-01T00:00:01Z' });
    expect(lost).toEqual({ won: false, token: etcd.revision, record });
    expect(await gw2.read('/runonce/7001')).toEqual({ token: etcd.revision, record, winnerAlive: true });
    // gw1 is cut off: no keepalive of its 2 s liveness lease reaches etcd, and it lapses.
    node1.partition(true);
    clock.advance(2000);
    expect(await gw2.read('/runonce/7001')).toMatchObject({ record, winnerAlive: false });
    // abandon() changes the claim only while it still holds the record given.
    node1.partition(false);
    await gw2.abandon('/runonce/7001', { node: 'gw2', start: 'x' }, { ...record, abandoned: true });
    expect((await gw2.read('/runonce/7001'))!.record).toEqual(record);
    await gw1.abandon('/runonce/7001', record, { ...record, abandoned: true });
    expect((await gw2.read('/runonce/7001'))!.record).toEqual({ ...record, abandoned: true });
  });

  it('finish() records the exit and drops the liveness key; the record keeps its retention lease', async () => {
    const clock = new FakeClock();
    const etcd = new MemoryEtcd({ now: clock.now });
    const gw1 = new EtcdClaimStore(etcd, 600, 2, pino({ level: 'silent' }));
    stores.push(gw1);
    const record = { node: 'gw1', start: '2026-01-01T00:00:00Z' };
    await gw1.claim('/runonce/7002', record);
    await gw1.finish('/runonce/7002', { ...record, exit: 0 });
    expect(await keysOf(etcd, '/runonce/')).toEqual(['/runonce/7002']);
    expect(await gw1.read('/runonce/7002')).toMatchObject({ record: { ...record, exit: 0 }, winnerAlive: false });
    clock.advance(600_000);
    expect(await gw1.read('/runonce/7002')).toBeNull();
  });
});
