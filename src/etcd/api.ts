/**
 * What execgate needs from etcd v3, independent of how it is reached: EtcdClient talks to
 * a real cluster over the JSON gateway, MemoryEtcd is the in-memory twin for unit tests.
 * Keys and values are UTF-8 strings here; revisions and versions are bigint (etcd int64);
 * lease ids are decimal strings, "0" meaning no lease.
 */

export interface EtcdKeyValue {
  key: string;
  value: string;
  createRevision: bigint;
  modRevision: bigint;
  /** Puts since the key was (re)created: 1 right after creation. */
  version: bigint;
  /** Lease id (decimal string), "0" when the key has no lease. */
  lease: string;
}

export interface LeaseGrant {
  id: string;
  /** The TTL etcd granted (may exceed the requested one). */
  ttlSeconds: number;
}

export type CompareResult = 'equal' | 'greater' | 'less' | 'not_equal';

/**
 * One condition of a transaction. A missing key compares as revision/version 0 and lease
 * "0"; a value comparison on a missing key is always false, even not_equal (as in etcd).
 */
export type Compare =
  | { key: string; target: 'create' | 'mod'; result: CompareResult; revision: bigint }
  | { key: string; target: 'version'; result: CompareResult; version: bigint }
  | { key: string; target: 'value'; result: CompareResult; value: string }
  | { key: string; target: 'lease'; result: CompareResult; lease: string };

export type PutOp =
  /** lease: absent or "0" stores the key without a lease (detaching any it had). */
  | { type: 'put'; key: string; value: string; lease?: string; ignoreLease?: never }
  /** Keeps the key's current lease; the key must exist, or the transaction fails. */
  | { type: 'put'; key: string; value: string; ignoreLease: true; lease?: never };

export type Op =
  | PutOp
  | { type: 'deleteRange'; key: string }
  /** One key, or (prefix: true) every key starting with key, in key order. */
  | { type: 'range'; key: string; prefix?: boolean };

export type OpResponse = { type: 'put' } | { type: 'deleteRange'; deleted: number } | { type: 'range'; kvs: EtcdKeyValue[] };

export interface Txn {
  compare: Compare[];
  success: Op[];
  failure?: Op[];
}

export interface TxnResult {
  /** Every comparison held, so the success ops ran (otherwise the failure ops did). */
  succeeded: boolean;
  /** One per op that ran, in order. */
  responses: OpResponse[];
  /** The store revision after the transaction. */
  revision: bigint;
}

/** What leadership and run-once need from etcd. */
export interface EtcdApi {
  grantLease(ttlSeconds: number): Promise<LeaseGrant>;
  /** One keepalive round trip; ttlSeconds 0 means the lease no longer exists. */
  keepAlive(leaseId: string): Promise<{ ttlSeconds: number }>;
  /** Revokes a lease (deleting its keys); a lease already gone is not an error. */
  revokeLease(leaseId: string): Promise<void>;
  /**
   * Runs the success ops if every comparison holds, else the failure ops, atomically.
   * Ops run in order (a range sees an earlier put of the same transaction). Rejects with
   * EtcdResponseError, changing nothing, when an op names a lease that does not exist,
   * ignoreLease names a missing key, or one branch touches a key twice.
   */
  txn(t: Txn): Promise<TxnResult>;
  /** Creates key bound to the lease unless it exists; returns the key as stored now. */
  putIfAbsent(key: string, value: string, leaseId: string): Promise<{ created: boolean; kv: EtcdKeyValue | null }>;
  /** Replaces the value of a key only while it is the one created at createRevision; false otherwise. */
  putIfCreated(key: string, value: string, leaseId: string, createRevision: bigint): Promise<boolean>;
  /** Deletes key only while it is the one created at createRevision; returns whether it deleted it. */
  deleteIfCreated(key: string, createRevision: bigint): Promise<boolean>;
  /** Every key under the prefix, oldest create revision first (key order among equals). */
  rangePrefix(prefix: string): Promise<{ kvs: EtcdKeyValue[]; revision: bigint }>;
}

/** etcd answered, but with an error (not a transport failure). */
export class EtcdResponseError extends Error {
  constructor(
    readonly status: number,
    readonly grpcCode: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'EtcdResponseError';
  }
}

/** No endpoint could be reached in time. */
export class EtcdUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EtcdUnavailableError';
  }
}

/** etcd's gRPC status codes and messages for the refusals both implementations share. */
export const ETCD_ERRORS = {
  leaseNotFound: { status: 404, grpcCode: 5, message: 'etcdserver: requested lease not found' },
  keyNotFound: { status: 400, grpcCode: 3, message: 'etcdserver: key not found' },
  duplicateKey: { status: 400, grpcCode: 3, message: 'etcdserver: duplicate key given in txn request' },
} as const;

export function etcdError(kind: keyof typeof ETCD_ERRORS): EtcdResponseError {
  const e = ETCD_ERRORS[kind];
  return new EtcdResponseError(e.status, e.grpcCode, e.message);
}
