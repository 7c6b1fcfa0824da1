import { afterEach, describe, expect, it, vi } from 'vitest';
import { EtcdUnavailableError } from '../../src/etcd/api.js';
import { FakeClock, MemoryEtcd, type MemoryEtcdCall } from '../../src/etcd/memory.js';

/**
 * What only the twin has: its clock, explicit expiry, partitions and the latency hook.
 * That it answers like etcd is test/tools/etcd-contract.test.ts's job.
 */

const keysOf = async (etcd: MemoryEtcd, prefix = '/') => (await etcd.rangePrefix(prefix)).kvs.map((kv) => kv.key);

describe('MemoryEtcd lease expiry on the injected clock', () => {
  it('a lease expires exactly at its deadline, taking its keys with it in one new revision', async () => {
    const clock = new FakeClock();
    const etcd = new MemoryEtcd({ now: clock.now });
    const lease = await etcd.grantLease(2);
    await etcd.txn({
      compare: [],
      success: [
        { type: 'put', key: '/a', value: '1', lease: lease.id },
        { type: 'put', key: '/b', value: '1', lease: lease.id },
      ],
    });
    const written = etcd.revision;
    clock.advance(1999);
    expect(await keysOf(etcd)).toEqual(['/a', '/b']);
    expect(etcd.revision).toBe(written);
    clock.advance(1);
    expect(await keysOf(etcd)).toEqual([]);
    expect(etcd.revision).toBe(written + 1n);
    expect(await etcd.keepAlive(lease.id)).toEqual({ ttlSeconds: 0 });
  });

  it('expire() acts without a call; each expired lease with keys is its own revision; an expired lease without keys is none', async () => {
    const clock = new FakeClock();
    const etcd = new MemoryEtcd({ now: clock.now });
    const [a, b, empty] = [await etcd.grantLease(2), await etcd.grantLease(3), await etcd.grantLease(2)];
    await etcd.txn({
      compare: [],
      success: [
        { type: 'put', key: '/a', value: '', lease: a.id },
        { type: 'put', key: '/b', value: '', lease: b.id },
      ],
    });
    const written = etcd.revision;
    clock.advance(5000);
    expect(etcd.revision).toBe(written); // nothing happens until something looks
    etcd.expire();
    expect(etcd.revision).toBe(written + 2n);
    expect(await keysOf(etcd)).toEqual([]);
    expect(await etcd.keepAlive(empty.id)).toEqual({ ttlSeconds: 0 });
  });

  it('keepAlive moves the deadline to now + TTL', async () => {
    const clock = new FakeClock();
    const etcd = new MemoryEtcd({ now: clock.now });
    const lease = await etcd.grantLease(2);
    await etcd.txn({ compare: [], success: [{ type: 'put', key: '/k', value: '', lease: lease.id }] });
    clock.advance(1500);
    expect(await etcd.keepAlive(lease.id)).toEqual({ ttlSeconds: 2 });
    clock.advance(1999);
    expect(await keysOf(etcd)).toEqual(['/k']);
    clock.advance(1);
    expect(await keysOf(etcd)).toEqual([]);
  });

  it('grants at least minTtlSeconds (2 by default, as etcd with its default timeouts)', async () => {
    expect((await new MemoryEtcd().grantLease(1)).ttlSeconds).toBe(2);
    expect((await new MemoryEtcd({ minTtlSeconds: 5 }).grantLease(1)).ttlSeconds).toBe(5);
    expect((await new MemoryEtcd({ minTtlSeconds: 1 }).grantLease(1.2)).ttlSeconds).toBe(2); // whole seconds, rounded up
  });

  describe('with vitest fake timers', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('the default clock is Date.now, so fake timers drive expiry', async () => {
      vi.useFakeTimers({ now: 5_000_000 });
      const etcd = new MemoryEtcd();
      const lease = await etcd.grantLease(2);
      await etcd.putIfAbsent('/leader', 'gw1', lease.id);
      await vi.advanceTimersByTimeAsync(1999);
      expect(await keysOf(etcd)).toEqual(['/leader']);
      await vi.advanceTimersByTimeAsync(1);
      expect(await keysOf(etcd)).toEqual([]);
    });

    it('beforeCall adds latency to every round trip and sees which call it is (the helpers are txns)', async () => {
      vi.useFakeTimers({ now: 5_000_000 });
      const calls: MemoryEtcdCall[] = [];
      const etcd = new MemoryEtcd({
        beforeCall: async (call) => {
          calls.push(call);
          await new Promise((r) => setTimeout(r, 40));
        },
      });
      let settled = false;
      const grant = etcd.grantLease(2).finally(() => (settled = true));
      await vi.advanceTimersByTimeAsync(39);
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      const lease = await grant;
      const put = etcd.putIfAbsent('/k', 'v', lease.id);
      await vi.advanceTimersByTimeAsync(40);
      expect((await put).created).toBe(true);
      const keep = etcd.keepAlive(lease.id);
      const range = etcd.rangePrefix('/');
      const revoke = etcd.revokeLease('12345');
      await vi.advanceTimersByTimeAsync(40);
      await Promise.all([keep, range, revoke]);
      expect(calls).toEqual(['grantLease', 'txn', 'keepAlive', 'rangePrefix', 'revokeLease']);
    });

    it('a partition that starts while a call is delayed fails that call; nothing was written', async () => {
      vi.useFakeTimers({ now: 5_000_000 });
      const etcd = new MemoryEtcd({ beforeCall: () => new Promise((r) => setTimeout(r, 100)) });
      const put = etcd.txn({ compare: [], success: [{ type: 'put', key: '/k', value: 'v' }] });
      const outcome = put.then(
        () => 'written',
        (err: Error) => err.name,
      );
      await vi.advanceTimersByTimeAsync(50);
      etcd.partition(true);
      await vi.advanceTimersByTimeAsync(50);
      expect(await outcome).toBe('EtcdUnavailableError');
      expect(etcd.revision).toBe(1n);
    });
  });
});

describe('MemoryEtcd faults', () => {
  it('partition(true) fails every call with EtcdUnavailableError until partition(false); time and the store go on', async () => {
    const clock = new FakeClock();
    const etcd = new MemoryEtcd({ now: clock.now });
    const lease = await etcd.grantLease(2);
    await etcd.putIfAbsent('/leader', 'gw1', lease.id);
    etcd.partition(true);
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ['grantLease', () => etcd.grantLease(2)],
      ['keepAlive', () => etcd.keepAlive(lease.id)],
      ['revokeLease', () => etcd.revokeLease(lease.id)],
      ['txn', () => etcd.txn({ compare: [], success: [{ type: 'put', key: '/x', value: '' }] })],
      ['putIfAbsent', () => etcd.putIfAbsent('/y', '', '0')],
      ['putIfCreated', () => etcd.putIfCreated('/leader', 'gw1 handover', lease.id, 2n)],
      ['deleteIfCreated', () => etcd.deleteIfCreated('/leader', 2n)],
      ['rangePrefix', () => etcd.rangePrefix('/')],
    ];
    for (const [name, attempt] of attempts) {
      const err = await attempt().then(
        () => new Error(`${name} answered through a partition`),
        (e: unknown) => e as Error,
      );
      expect(err, name).toBeInstanceOf(EtcdUnavailableError);
      expect(err.message, name).toMatch(/partitioned.*partition\(false\)/);
    }
    expect(etcd.revision).toBe(2n);
    clock.advance(2000); // the lease was not kept alive across the partition
    etcd.partition(false);
    expect(await keysOf(etcd)).toEqual([]);
    expect(await etcd.keepAlive(lease.id)).toEqual({ ttlSeconds: 0 });
  });

  it('client() is another client of the same etcd with its own partition switch', async () => {
    const gw1 = new MemoryEtcd();
    const gw2 = gw1.client();
    await gw1.txn({ compare: [], success: [{ type: 'put', key: '/k', value: 'from gw1' }] });
    expect((await gw2.rangePrefix('/')).kvs.map((kv) => kv.value)).toEqual(['from gw1']);
    gw2.partition(true);
    await expect(gw2.rangePrefix('/')).rejects.toThrow(EtcdUnavailableError);
    expect(await keysOf(gw1)).toEqual(['/k']);
    gw2.partition(false);
    expect(await keysOf(gw2)).toEqual(['/k']);
  });

  it('a hook that throws fails the call before it reaches the store', async () => {
    const etcd = new MemoryEtcd();
    etcd.beforeCall = (call) => {
      if (call === 'txn') throw new Error('injected');
    };
    await expect(etcd.txn({ compare: [], success: [{ type: 'put', key: '/k', value: '' }] })).rejects.toThrow('injected');
    expect(etcd.revision).toBe(1n);
    etcd.beforeCall = undefined;
    await etcd.txn({ compare: [], success: [{ type: 'put', key: '/k', value: '' }] });
    expect(etcd.revision).toBe(2n);
  });

  it('answers are copies: changing one does not change the store', async () => {
    const etcd = new MemoryEtcd();
    await etcd.txn({ compare: [], success: [{ type: 'put', key: '/k', value: 'v' }] });
    const first = await etcd.rangePrefix('/');
    first.kvs[0]!.value = 'changed';
    expect((await etcd.rangePrefix('/')).kvs[0]!.value).toBe('v');
  });
});
