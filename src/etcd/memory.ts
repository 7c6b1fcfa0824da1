/**
 * An in-memory etcd for unit tests, beside the real client the way an in-memory transport
 * ships beside a network one: the same EtcdApi, the same answers and errors as etcd
 * (test/tools/etcd-contract.test.ts runs one set of cases against both), a clock
 * you drive, and faults you switch on.
 *
 *   const clock = new FakeClock();
 *   const etcd = new MemoryEtcd({ now: clock.now });
 *   const gw2 = etcd.client();        // a second client of the same etcd, e.g. another node
 *   gw2.partition(true);              // every gw2 call now fails with EtcdUnavailableError
 *   clock.advance(3000);              // leases past their deadline expire on the next call
 */
import { EtcdUnavailableError, type EtcdKeyValue, type LeaseGrant, type Txn, type TxnResult } from './api.js';
import { EtcdApiWithHelpers } from './helpers.js';
import { MemoryStore, type MemoryStoreOptions } from './memoryStore.js';

/** The round trips a client makes; the helpers (putIfAbsent, ...) are one txn each, as on the wire. */
export type MemoryEtcdCall = 'grantLease' | 'keepAlive' | 'revokeLease' | 'txn' | 'rangePrefix';

/**
 * Runs before every call reaches the store: await a timer to add latency, throw to fail
 * the call. A partition is checked after it, so a call in flight when the partition
 * starts fails too.
 */
export type BeforeCallHook = (call: MemoryEtcdCall) => void | Promise<void>;

export interface MemoryEtcdOptions extends MemoryStoreOptions {
  beforeCall?: BeforeCallHook;
}

export class MemoryEtcd extends EtcdApiWithHelpers {
  beforeCall: BeforeCallHook | undefined;
  private partitioned = false;
  private readonly store: MemoryStore;

  constructor(options: MemoryEtcdOptions = {}, store?: MemoryStore) {
    super();
    this.store = store ?? new MemoryStore(options);
    this.beforeCall = options.beforeCall;
  }

  /** Another client of the same etcd, with its own partition switch and hook (none set). */
  client(): MemoryEtcd {
    return new MemoryEtcd({}, this.store);
  }

  /** Cuts this client off from etcd (true) or reconnects it (false); other clients are not affected. */
  partition(cut: boolean): void {
    this.partitioned = cut;
  }

  /** The store's revision now, without a round trip (and regardless of partitions). */
  get revision(): bigint {
    return this.store.revision;
  }

  /** Revokes every lease whose deadline has passed; calls do this by themselves first. */
  expire(): void {
    this.store.expire();
  }

  private async enter(call: MemoryEtcdCall): Promise<void> {
    await this.beforeCall?.(call);
    await Promise.resolve(); // never answer synchronously: a real round trip never does
    if (this.partitioned) throw new EtcdUnavailableError(`memory etcd: this client is partitioned (${call}); partition(false) reconnects it`);
  }

  async grantLease(ttlSeconds: number): Promise<LeaseGrant> {
    await this.enter('grantLease');
    return this.store.grant(ttlSeconds);
  }

  async keepAlive(leaseId: string): Promise<{ ttlSeconds: number }> {
    await this.enter('keepAlive');
    return { ttlSeconds: this.store.keepAlive(leaseId) };
  }

  async revokeLease(leaseId: string): Promise<void> {
    await this.enter('revokeLease');
    this.store.expire();
    this.store.revoke(leaseId);
  }

  async txn(t: Txn): Promise<TxnResult> {
    await this.enter('txn');
    return this.store.txn(t);
  }

  async rangePrefix(prefix: string): Promise<{ kvs: EtcdKeyValue[]; revision: bigint }> {
    await this.enter('rangePrefix');
    return this.store.rangePrefix(prefix);
  }
}

/** A millisecond clock that moves only when told to. */
export class FakeClock {
  constructor(private ms = 1_000_000) {}

  readonly now = (): number => this.ms;

  advance(ms: number): void {
    if (ms < 0) throw new Error(`FakeClock.advance(${ms}): a clock does not go back`);
    this.ms += ms;
  }
}
