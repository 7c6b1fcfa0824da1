/**
 * The state of an in-memory etcd, changed the way etcd changes it: one global revision,
 * bumped once by every transaction (or lease revocation) that changes at least one key;
 * keys with create/mod revision, version and lease; leases that expire on a clock.
 * Synchronous: MemoryEtcd (memory.ts) puts the asynchronous EtcdApi in front of it.
 */
import { etcdError, type Compare, type CompareResult, type EtcdKeyValue, type LeaseGrant, type Op, type OpResponse, type Txn, type TxnResult } from './api.js';
import { byCreateRevision, compareKeys } from './helpers.js';

export interface MemoryStoreOptions {
  /** Milliseconds; lease deadlines are measured on it. */
  now?: () => number;
  /**
   * etcd grants at least 1.5 election timeouts, rounded up to whole seconds: 2 s with the
   * default 100 ms heartbeat and 1000 ms election timeout.
   */
  minTtlSeconds?: number;
}

interface Lease {
  ttlSeconds: number;
  deadline: number;
}

const FIRST_LEASE_ID = 7_587_000_000_000_000_001n; // etcd's ids are large int64s; any unique ones do

export class MemoryStore {
  private rev = 1n; // a fresh etcd answers revision 1
  private readonly kvs = new Map<string, EtcdKeyValue>();
  private readonly leases = new Map<string, Lease>();
  private nextLeaseId = FIRST_LEASE_ID;
  readonly now: () => number;
  private readonly minTtlSeconds: number;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.minTtlSeconds = options.minTtlSeconds ?? 2;
  }

  get revision(): bigint {
    return this.rev;
  }

  /** Revokes every lease whose deadline has passed, oldest deadline first. */
  expire(): void {
    const now = this.now();
    const expired = [...this.leases].filter(([, l]) => l.deadline <= now).sort(([, a], [, b]) => a.deadline - b.deadline);
    for (const [id] of expired) this.revoke(id);
  }

  grant(ttlSeconds: number): LeaseGrant {
    this.expire();
    const granted = Math.max(Math.ceil(ttlSeconds), this.minTtlSeconds);
    const id = (this.nextLeaseId++).toString();
    this.leases.set(id, { ttlSeconds: granted, deadline: this.now() + granted * 1000 });
    return { id, ttlSeconds: granted };
  }

  /** Renews a lease; 0 when it does not exist (any more), as etcd answers. */
  keepAlive(leaseId: string): number {
    this.expire();
    const lease = this.leases.get(leaseId);
    if (!lease) return 0;
    lease.deadline = this.now() + lease.ttlSeconds * 1000;
    return lease.ttlSeconds;
  }

  /** Deletes the lease and its keys, all in one revision; an unknown lease changes nothing. */
  revoke(leaseId: string): void {
    if (!this.leases.delete(leaseId)) return;
    let deleted = false;
    for (const [key, kv] of this.kvs) {
      if (kv.lease === leaseId) deleted = this.kvs.delete(key) || deleted;
    }
    if (deleted) this.rev++;
  }

  rangePrefix(prefix: string): { kvs: EtcdKeyValue[]; revision: bigint } {
    this.expire();
    const kvs = [...this.kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort(byCreateRevision);
    return { kvs: kvs.map((kv) => ({ ...kv })), revision: this.rev };
  }

  txn(t: Txn): TxnResult {
    this.expire();
    const failure = t.failure ?? [];
    rejectDuplicateKeys(t.success);
    rejectDuplicateKeys(failure);
    const succeeded = t.compare.every((c) => this.holds(c));
    const ops = succeeded ? t.success : failure;
    this.rejectInvalidPuts(ops);
    const writeRevision = this.rev + 1n;
    let changed = false;
    const responses = ops.map((op): OpResponse => {
      switch (op.type) {
        case 'put': {
          const old = this.kvs.get(op.key);
          const lease = op.ignoreLease ? old!.lease : (op.lease ?? '0');
          this.kvs.set(op.key, {
            key: op.key,
            value: op.value,
            createRevision: old?.createRevision ?? writeRevision,
            modRevision: writeRevision,
            version: (old?.version ?? 0n) + 1n,
            lease,
          });
          changed = true;
          return { type: 'put' };
        }
        case 'deleteRange': {
          const deleted = this.kvs.delete(op.key);
          changed ||= deleted;
          return { type: 'deleteRange', deleted: deleted ? 1 : 0 };
        }
        case 'range': {
          const kvs = op.prefix
            ? [...this.kvs.values()].filter((kv) => kv.key.startsWith(op.key)).sort((a, b) => compareKeys(a.key, b.key))
            : [this.kvs.get(op.key)].filter((kv): kv is EtcdKeyValue => kv !== undefined);
          return { type: 'range', kvs: kvs.map((kv) => ({ ...kv })) };
        }
      }
    });
    if (changed) this.rev = writeRevision;
    return { succeeded, responses, revision: this.rev };
  }

  private holds(c: Compare): boolean {
    const kv = this.kvs.get(c.key);
    switch (c.target) {
      case 'value':
        return kv !== undefined && satisfies(compareKeys(kv.value, c.value), c.result);
      case 'create':
        return satisfies(compareBigints(kv?.createRevision ?? 0n, c.revision), c.result);
      case 'mod':
        return satisfies(compareBigints(kv?.modRevision ?? 0n, c.revision), c.result);
      case 'version':
        return satisfies(compareBigints(kv?.version ?? 0n, c.version), c.result);
      case 'lease':
        return satisfies(compareBigints(BigInt(kv?.lease ?? '0'), BigInt(c.lease)), c.result);
    }
  }

  /** etcd checks the branch it is about to run against the state before it, then applies it whole. */
  private rejectInvalidPuts(ops: Op[]): void {
    for (const op of ops) {
      if (op.type !== 'put') continue;
      if (op.ignoreLease) {
        if (!this.kvs.has(op.key)) throw etcdError('keyNotFound');
      } else if (op.lease !== undefined && op.lease !== '0' && !this.leases.has(op.lease)) {
        throw etcdError('leaseNotFound');
      }
    }
  }
}

/** etcd refuses a branch that puts one key twice, or puts and deletes it. */
function rejectDuplicateKeys(ops: Op[]): void {
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.type !== 'put') continue;
    if (puts.has(op.key)) throw etcdError('duplicateKey');
    puts.add(op.key);
  }
  for (const op of ops) if (op.type === 'deleteRange' && puts.has(op.key)) throw etcdError('duplicateKey');
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function satisfies(order: number, result: CompareResult): boolean {
  switch (result) {
    case 'equal':
      return order === 0;
    case 'not_equal':
      return order !== 0;
    case 'greater':
      return order > 0;
    case 'less':
      return order < 0;
  }
}
