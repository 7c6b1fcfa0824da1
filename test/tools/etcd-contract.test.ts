import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdClient, EtcdResponseError, type Compare, type CompareResult, type EtcdApi, type Op } from '../../src/etcd/client.js';
import { FakeClock, MemoryEtcd } from '../../src/etcd/memory.js';
import { ETCD_BIN, startEtcdCluster, type EtcdCluster } from '../helpers/etcdCluster.js';
import { labIt } from '../helpers/lab.js';
import { sleep } from '../helpers/proc.js';

/**
 * One set of cases, run against a real etcd (one member on loopback, started as the
 * leadership integration test does) and against MemoryEtcd, so the twin cannot drift
 * from what etcd answers. Every case has its own keys; revisions are compared relative
 * to the case's start, so cases can share the real etcd.
 */

interface Harness {
  api: EtcdApi;
  /** Unique key prefix of this case. */
  p: string;
  /** Lets time pass: real sleep against etcd, a clock advance for the twin. */
  passTime(ms: number): Promise<void>;
}

type Case = [name: string, run: (h: Harness) => Promise<void>, timeoutMs?: number];

/** The store revision now, with one read round trip. */
const revisionOf = async (api: EtcdApi) => (await api.rangePrefix('\u0000never-a-key')).revision;

const getKv = async (api: EtcdApi, key: string) => {
  const r = await api.txn({ compare: [], success: [{ type: 'range', key }] });
  const range = r.responses[0]!;
  if (range.type !== 'range') throw new Error(`expected a range response, got ${range.type}`);
  return range.kvs[0] ?? null;
};

const rejection = async (p: Promise<unknown>): Promise<EtcdResponseError> => {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof EtcdResponseError)) throw new Error(`expected an EtcdResponseError, got ${String(err)}`);
  return err;
};

/** How each comparison result must come out when the key's value is below, at or above the operand. */
const TRUTH: Record<'operandBelow' | 'operandSame' | 'operandAbove', Record<CompareResult, boolean>> = {
  operandBelow: { equal: false, not_equal: true, greater: true, less: false },
  operandSame: { equal: true, not_equal: false, greater: false, less: false },
  operandAbove: { equal: false, not_equal: true, greater: false, less: true },
};
const RESULTS: CompareResult[] = ['equal', 'not_equal', 'greater', 'less'];

const cases: Case[] = [
  [
    'grantLease raises a short TTL to the 2 s floor (1.5 election timeouts) and keeps a longer one; keepAlive answers the granted TTL',
    async ({ api }) => {
      const short = await api.grantLease(1);
      expect(short.ttlSeconds).toBe(2);
      const long = await api.grantLease(7);
      expect(long.ttlSeconds).toBe(7);
      expect(long.id).not.toBe(short.id);
      expect(await api.keepAlive(long.id)).toEqual({ ttlSeconds: 7 });
      await api.revokeLease(short.id);
      await api.revokeLease(long.id);
    },
  ],
  [
    'keepAlive of an unknown or revoked lease answers TTL 0; revoking one that is gone is not an error',
    async ({ api }) => {
      expect(await api.keepAlive('12345')).toEqual({ ttlSeconds: 0 });
      await api.revokeLease('12345');
      const lease = await api.grantLease(5);
      await api.revokeLease(lease.id);
      expect(await api.keepAlive(lease.id)).toEqual({ ttlSeconds: 0 });
      await api.revokeLease(lease.id);
    },
  ],
  [
    'a put creates the key at a new revision (version 1); the next put keeps its create revision and bumps mod revision and version',
    async ({ api, p }) => {
      const before = await revisionOf(api);
      const put = await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/k`, value: 'one' }] });
      expect(put).toEqual({ succeeded: true, responses: [{ type: 'put' }], revision: before + 1n });
      expect(await getKv(api, `${p}/k`)).toEqual({ key: `${p}/k`, value: 'one', createRevision: before + 1n, modRevision: before + 1n, version: 1n, lease: '0' });
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/k`, value: 'two' }] });
      expect(await getKv(api, `${p}/k`)).toEqual({ key: `${p}/k`, value: 'two', createRevision: before + 1n, modRevision: before + 2n, version: 2n, lease: '0' });
    },
  ],
  [
    'every compare target and result against an existing key, with the operand below, at and above the key',
    async ({ api, p }) => {
      const key = `${p}/k`;
      const lease = await api.grantLease(30);
      await api.txn({ compare: [], success: [{ type: 'put', key, value: 'm' }] });
      await api.txn({ compare: [], success: [{ type: 'put', key, value: 'm', lease: lease.id }] });
      const kv = (await getKv(api, key))!;
      expect(kv.version).toBe(2n);
      expect(kv.modRevision).toBeGreaterThan(kv.createRevision);
      const around = (n: bigint) => [n - 1n, n, n + 1n];
      const rows: Array<[Compare['target'], (result: CompareResult, i: number) => Compare]> = [
        ['create', (result, i) => ({ key, target: 'create', result, revision: around(kv.createRevision)[i]! })],
        ['mod', (result, i) => ({ key, target: 'mod', result, revision: around(kv.modRevision)[i]! })],
        ['version', (result, i) => ({ key, target: 'version', result, version: around(kv.version)[i]! })],
        ['value', (result, i) => ({ key, target: 'value', result, value: ['l', 'm', 'n'][i]! })],
        ['lease', (result, i) => ({ key, target: 'lease', result, lease: around(BigInt(lease.id))[i]!.toString() })],
      ];
      const positions = ['operandBelow', 'operandSame', 'operandAbove'] as const;
      const seen: string[] = [];
      const expected: string[] = [];
      for (const [target, make] of rows) {
        for (const [i, position] of positions.entries()) {
          for (const result of RESULTS) {
            const r = await api.txn({ compare: [make(result, i)], success: [], failure: [] });
            seen.push(`${target} ${result} ${position}: ${r.succeeded}`);
            expected.push(`${target} ${result} ${position}: ${TRUTH[position][result]}`);
          }
        }
      }
      expect(seen).toEqual(expected);
      await api.revokeLease(lease.id);
    },
  ],
  [
    'a missing key compares as revision, version and lease 0, while any value comparison on it fails (even not_equal)',
    async ({ api, p }) => {
      const key = `${p}/missing`;
      const holds = async (compare: Compare) => (await api.txn({ compare: [compare], success: [] })).succeeded;
      expect(await holds({ key, target: 'create', result: 'equal', revision: 0n })).toBe(true);
      expect(await holds({ key, target: 'mod', result: 'less', revision: 1n })).toBe(true);
      expect(await holds({ key, target: 'version', result: 'equal', version: 0n })).toBe(true);
      expect(await holds({ key, target: 'version', result: 'greater', version: 0n })).toBe(false);
      expect(await holds({ key, target: 'lease', result: 'equal', lease: '0' })).toBe(true);
      expect(await holds({ key, target: 'value', result: 'not_equal', value: 'x' })).toBe(false);
      expect(await holds({ key, target: 'value', result: 'equal', value: '' })).toBe(false);
      expect(await holds({ key, target: 'value', result: 'less', value: 'zzz' })).toBe(false);
    },
  ],
  [
    'one failing comparison runs the failure branch; a read-only branch leaves the revision alone',
    async ({ api, p }) => {
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/a`, value: 'x' }] });
      const before = await revisionOf(api);
      const r = await api.txn({
        compare: [
          { key: `${p}/a`, target: 'value', result: 'equal', value: 'x' },
          { key: `${p}/a`, target: 'version', result: 'equal', version: 5n },
        ],
        success: [{ type: 'put', key: `${p}/a`, value: 'should not happen' }],
        failure: [
          { type: 'range', key: `${p}/a` },
          { type: 'range', key: `${p}/none` },
        ],
      });
      expect(r.succeeded).toBe(false);
      expect(r.revision).toBe(before);
      expect(r.responses.map((x) => (x.type === 'range' ? x.kvs.map((kv) => kv.value) : x.type))).toEqual([['x'], []]);
      expect((await getKv(api, `${p}/a`))!.value).toBe('x');
    },
  ],
  [
    'ops run in order at one revision: a range sees an earlier put of the same txn; deleting nothing changes nothing',
    async ({ api, p }) => {
      const before = await revisionOf(api);
      const r = await api.txn({
        compare: [],
        success: [
          { type: 'put', key: `${p}/x`, value: '1' },
          { type: 'put', key: `${p}/y`, value: '2' },
          { type: 'range', key: `${p}/x` },
          { type: 'deleteRange', key: `${p}/nothing` },
        ],
      });
      expect(r.revision).toBe(before + 1n);
      expect(r.responses[2]).toEqual({ type: 'range', kvs: [{ key: `${p}/x`, value: '1', createRevision: before + 1n, modRevision: before + 1n, version: 1n, lease: '0' }] });
      expect(r.responses[3]).toEqual({ type: 'deleteRange', deleted: 0 });
      const empty = await api.txn({ compare: [], success: [{ type: 'deleteRange', key: `${p}/nothing` }] });
      expect(empty.revision).toBe(before + 1n);
      const del = await api.txn({
        compare: [],
        success: [
          { type: 'deleteRange', key: `${p}/x` },
          { type: 'range', key: `${p}/x` },
        ],
      });
      expect(del).toEqual({
        succeeded: true,
        responses: [
          { type: 'deleteRange', deleted: 1 },
          { type: 'range', kvs: [] },
        ],
        revision: before + 2n,
      });
      // Created again: a new create revision, version from 1.
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/x`, value: '3' }] });
      expect(await getKv(api, `${p}/x`)).toMatchObject({ createRevision: before + 3n, version: 1n });
    },
  ],
  [
    'a prefix range returns exactly the keys under it, in UTF-8 byte order (not UTF-16 order)',
    async ({ api, p }) => {
      // U+FF5E sorts before U+1F600 in UTF-8 (EF.. < F0..) but after it in UTF-16 (FF5E > D83D).
      const keys = [`${p}/d/b`, `${p}/d/\u{1F600}`, `${p}/d/a/deep`, `${p}/d/\uFF5E`, `${p}/d/a`, `${p}/dx`, `${p}/d`];
      for (const key of keys) await api.txn({ compare: [], success: [{ type: 'put', key, value: key }] });
      const r = await api.txn({ compare: [], success: [{ type: 'range', key: `${p}/d/`, prefix: true }] });
      const range = r.responses[0]!;
      expect(range.type === 'range' ? range.kvs.map((kv) => kv.key) : range).toEqual([`${p}/d/a`, `${p}/d/a/deep`, `${p}/d/b`, `${p}/d/\uFF5E`, `${p}/d/\u{1F600}`]);
    },
  ],
  [
    'rangePrefix: oldest create revision first, whatever the key order and later updates; key order among keys of one txn',
    async ({ api, p }) => {
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/c`, value: '1' }] });
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/a`, value: '2' }] });
      await api.txn({
        compare: [],
        success: [
          { type: 'put', key: `${p}/e`, value: '3' },
          { type: 'put', key: `${p}/b`, value: '3' },
        ],
      });
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/c`, value: 'updated' }] });
      const r = await api.rangePrefix(`${p}/`);
      expect(r.kvs.map((kv) => kv.key)).toEqual([`${p}/c`, `${p}/a`, `${p}/b`, `${p}/e`]);
      expect(r.kvs[0]!.value).toBe('updated');
      expect(r.revision).toBe(await revisionOf(api));
      expect((await api.rangePrefix(`${p}/none/`)).kvs).toEqual([]);
    },
  ],
  [
    'refusals: an unknown lease, ignoreLease on a missing key, a key twice in one branch (even the branch not taken); nothing is applied',
    async ({ api, p }) => {
      const before = await revisionOf(api);
      const lease = await rejection(
        api.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}/ok`, value: 'v' },
            { type: 'put', key: `${p}/k`, value: 'v', lease: '12345' },
          ],
        }),
      );
      expect([lease.grpcCode, lease.message]).toEqual([5, 'etcdserver: requested lease not found']);
      const missing = await rejection(api.txn({ compare: [], success: [{ type: 'put', key: `${p}/k`, value: 'v', ignoreLease: true }] }));
      expect([missing.grpcCode, missing.message]).toEqual([3, 'etcdserver: key not found']);
      const twicePut: Op[] = [
        { type: 'put', key: `${p}/k`, value: '1' },
        { type: 'put', key: `${p}/k`, value: '2' },
      ];
      const putDelete: Op[] = [
        { type: 'put', key: `${p}/k`, value: '1' },
        { type: 'deleteRange', key: `${p}/k` },
      ];
      for (const t of [{ success: twicePut }, { success: putDelete }, { success: [], failure: twicePut }]) {
        const dup = await rejection(api.txn({ compare: [], ...t }));
        expect([dup.grpcCode, dup.message]).toEqual([3, 'etcdserver: duplicate key given in txn request']);
      }
      expect(await revisionOf(api)).toBe(before);
      expect(await getKv(api, `${p}/ok`)).toBeNull();
      // An unknown lease in the branch not taken is never looked at.
      const r = await api.txn({ compare: [], success: [], failure: [{ type: 'put', key: `${p}/k`, value: 'v', lease: '12345' }] });
      expect(r.succeeded).toBe(true);
    },
  ],
  [
    'keys die with their lease, all in one revision; a key put again without the lease, or revoking a lease with no keys, changes nothing',
    async ({ api, p }) => {
      const lease = await api.grantLease(30);
      const empty = await api.grantLease(30);
      await api.txn({
        compare: [],
        success: [
          { type: 'put', key: `${p}/1`, value: 'v', lease: lease.id },
          { type: 'put', key: `${p}/2`, value: 'v', lease: lease.id },
          { type: 'put', key: `${p}/3`, value: 'v', lease: lease.id },
        ],
      });
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/3`, value: 'detached' }] });
      await api.txn({ compare: [], success: [{ type: 'put', key: `${p}/2`, value: 'same lease', ignoreLease: true }] });
      expect((await getKv(api, `${p}/1`))!.lease).toBe(lease.id);
      expect((await getKv(api, `${p}/2`))!).toMatchObject({ lease: lease.id, value: 'same lease' });
      expect((await getKv(api, `${p}/3`))!.lease).toBe('0');
      const before = await revisionOf(api);
      await api.revokeLease(lease.id);
      expect(await revisionOf(api)).toBe(before + 1n);
      expect((await api.rangePrefix(`${p}/`)).kvs.map((kv) => kv.key)).toEqual([`${p}/3`]);
      await api.revokeLease(empty.id);
      expect(await revisionOf(api)).toBe(before + 1n);
    },
  ],
  [
    'putIfAbsent, putIfCreated and deleteIfCreated hold only for the key created at the given revision',
    async ({ api, p }) => {
      const key = `${p}/leader`;
      const lease = await api.grantLease(30);
      const first = await api.putIfAbsent(key, 'gw1', lease.id);
      expect(first.created).toBe(true);
      const rev = first.kv!.createRevision;
      expect(first.kv).toEqual({ key, value: 'gw1', createRevision: rev, modRevision: rev, version: 1n, lease: lease.id });
      expect(await api.putIfAbsent(key, 'gw2', lease.id)).toEqual({ created: false, kv: first.kv });
      expect(await api.putIfCreated(key, 'gw1 ready', lease.id, rev - 1n)).toBe(false);
      expect(await api.putIfCreated(key, 'gw1 ready', lease.id, rev)).toBe(true);
      expect(await getKv(api, key)).toMatchObject({ value: 'gw1 ready', createRevision: rev, modRevision: rev + 1n, version: 2n, lease: lease.id });
      expect(await api.deleteIfCreated(key, rev + 1n)).toBe(false);
      expect(await getKv(api, key)).not.toBeNull();
      expect(await api.deleteIfCreated(key, rev)).toBe(true);
      expect(await getKv(api, key)).toBeNull();
      expect(await api.deleteIfCreated(key, rev)).toBe(false);
      expect(await api.deleteIfCreated(key, 0n)).toBe(false); // "not created" holds, yet nothing was deleted
      expect(await api.putIfCreated(key, 'gone', lease.id, rev)).toBe(false);
      await expect(api.putIfAbsent(`${p}/other`, 'v', '12345')).rejects.toThrow(/requested lease not found/);
      await api.revokeLease(lease.id);
    },
  ],
  [
    'a lease kept alive outlives its TTL; one left alone expires with its keys, and keepAlive then answers 0',
    async ({ api, p, passTime }) => {
      const kept = await api.grantLease(2);
      const left = await api.grantLease(2);
      await api.txn({
        compare: [],
        success: [
          { type: 'put', key: `${p}/kept`, value: 'v', lease: kept.id },
          { type: 'put', key: `${p}/left`, value: 'v', lease: left.id },
        ],
      });
      for (let i = 0; i < 3; i++) {
        await passTime(1000);
        expect(await api.keepAlive(kept.id)).toEqual({ ttlSeconds: 2 });
      }
      // 3 s in: `left` passed its deadline 1 s ago (etcd revokes expired leases within ~0.5 s).
      expect((await api.rangePrefix(`${p}/`)).kvs.map((kv) => kv.key)).toEqual([`${p}/kept`]);
      expect(await api.keepAlive(left.id)).toEqual({ ttlSeconds: 0 });
      await api.revokeLease(kept.id);
    },
    20_000,
  ],
];

let seq = 0;
const prefix = () => `/contract-${process.pid}-${++seq}`;

describe('etcd contract: MemoryEtcd', () => {
  for (const [name, run, timeout] of cases) {
    it(
      name,
      async () => {
        const clock = new FakeClock();
        const api = new MemoryEtcd({ now: clock.now });
        await run({ api, p: prefix(), passTime: async (ms) => clock.advance(ms) });
      },
      timeout,
    );
  }
});

const etcdMissing = existsSync(ETCD_BIN) ? null : `${ETCD_BIN} not found (install etcd 3.4+)`;

describe('etcd contract: a real etcd through EtcdClient', () => {
  let etcd: EtcdCluster | undefined;
  let api: EtcdClient;
  beforeAll(async () => {
    if (etcdMissing) return;
    etcd = await startEtcdCluster(1);
    api = etcd.client();
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  for (const [name, run, timeout] of cases) {
    labIt(
      name,
      etcdMissing,
      () =>
        run({
          api,
          p: prefix(),
          passTime: async (ms) => {
            await sleep(ms);
          },
        }),
      timeout,
    );
  }
});
