import type { EtcdApi, EtcdKeyValue, LeaseGrant, Txn, TxnResult } from './api.js';

/** The helper methods of EtcdApi, written once on top of txn() for every implementation. */

export async function putIfAbsentTxn(api: Pick<EtcdApi, 'txn'>, key: string, value: string, leaseId: string): Promise<{ created: boolean; kv: EtcdKeyValue | null }> {
  const r = await api.txn({
    compare: [{ key, target: 'create', result: 'equal', revision: 0n }],
    success: [{ type: 'put', key, value, lease: leaseId }],
    failure: [{ type: 'range', key }],
  });
  if (r.succeeded) {
    const kv: EtcdKeyValue = { key, value, createRevision: r.revision, modRevision: r.revision, version: 1n, lease: leaseId };
    return { created: true, kv };
  }
  const existing = r.responses[0];
  return { created: false, kv: existing?.type === 'range' ? (existing.kvs[0] ?? null) : null };
}

export async function putIfCreatedTxn(api: Pick<EtcdApi, 'txn'>, key: string, value: string, leaseId: string, createRevision: bigint): Promise<boolean> {
  const r = await api.txn({
    compare: [{ key, target: 'create', result: 'equal', revision: createRevision }],
    success: [{ type: 'put', key, value, lease: leaseId }],
  });
  return r.succeeded;
}

export async function deleteIfCreatedTxn(api: Pick<EtcdApi, 'txn'>, key: string, createRevision: bigint): Promise<boolean> {
  const r = await api.txn({
    compare: [{ key, target: 'create', result: 'equal', revision: createRevision }],
    success: [{ type: 'deleteRange', key }],
  });
  // createRevision 0 "holds" for a missing key, but then nothing was deleted.
  const deleted = r.responses[0];
  return r.succeeded && deleted?.type === 'deleteRange' && deleted.deleted > 0;
}

/** Orders keys the way etcd's range does by default: by their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Oldest create revision first, key order among keys created in one transaction. */
export function byCreateRevision(a: EtcdKeyValue, b: EtcdKeyValue): number {
  if (a.createRevision !== b.createRevision) return a.createRevision < b.createRevision ? -1 : 1;
  return compareKeys(a.key, b.key);
}

/**
 * The helper methods every EtcdApi implementation shares, on top of its own txn(): the
 * real client and the in-memory twin extend this, so they cannot differ there.
 */
export abstract class EtcdApiWithHelpers implements EtcdApi {
  abstract grantLease(ttlSeconds: number): Promise<LeaseGrant>;
  abstract keepAlive(leaseId: string): Promise<{ ttlSeconds: number }>;
  abstract revokeLease(leaseId: string): Promise<void>;
  abstract txn(t: Txn): Promise<TxnResult>;
  abstract rangePrefix(prefix: string): Promise<{ kvs: EtcdKeyValue[]; revision: bigint }>;

  putIfAbsent(key: string, value: string, leaseId: string): Promise<{ created: boolean; kv: EtcdKeyValue | null }> {
    return putIfAbsentTxn(this, key, value, leaseId);
  }

  putIfCreated(key: string, value: string, leaseId: string, createRevision: bigint): Promise<boolean> {
    return putIfCreatedTxn(this, key, value, leaseId, createRevision);
  }

  deleteIfCreated(key: string, createRevision: bigint): Promise<boolean> {
    return deleteIfCreatedTxn(this, key, createRevision);
  }
}
