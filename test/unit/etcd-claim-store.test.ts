import { describe, it, expect, afterEach } from 'vitest';
import pino from 'pino';
import type { EtcdApi } from '../../src/etcd/api.js';
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
