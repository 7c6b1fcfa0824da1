import type { EtcdClient } from '../etcd/client.js';
import type { Logger } from '../log.js';
import type { ClaimRecord, ClaimResult, ClaimState, ClaimStore } from './claimStore.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
}
interface TxnResponse {
  succeeded?: boolean;
  header?: { revision?: string };
  responses?: Array<{ response_range?: { kvs?: RawKv[] } }>;
}

/**
 * Claims in etcd: `<key>` holds the record (on a lease of the retention period) and
 * `<key>/alive` is bound to this node's short liveness lease, so a node that dies
 * mid-step is seen as dead by the others within a few seconds. Both are written in
 * one transaction, and read back in one, so a reader never sees half a state.
 */
export class EtcdClaimStore implements ClaimStore {
  private liveness: { id: string; timer: NodeJS.Timeout } | null = null;
  private livenessGrant: Promise<string> | null = null;
  private readonly retentionLeases = new Map<string, string>();

  constructor(
    private readonly client: EtcdClient,
    private readonly retentionSeconds: number,
    private readonly livenessTtlSeconds: number,
    private readonly log: Logger,
  ) {}

  /**
   * This node's liveness lease, granted once and shared by every claim. Concurrent first
   * claims wait for the same grant: each granting its own lease used to leave keepalive
   * timers nobody cleared, and one expiring lease stopped the keepalive of another, so
   * losers saw a live winner as dead.
   */
  private livenessLease(): Promise<string> {
    if (this.liveness) return Promise.resolve(this.liveness.id);
    this.livenessGrant ??= this.grantLiveness().finally(() => {
      this.livenessGrant = null;
    });
    return this.livenessGrant;
  }

  private async grantLiveness(): Promise<string> {
    const grant = await this.client.grantLease(this.livenessTtlSeconds);
    const timer = setInterval(() => {
      this.client.keepAlive(grant.id).then(
        (r) => {
          if (r.ttlSeconds <= 0) this.dropLiveness(grant.id, 'lease expired');
        },
        (err: Error) => this.log.warn({ err: err.message }, 'run-once liveness keepalive failed'),
      );
    }, Math.max(250, (grant.ttlSeconds * 1000) / 3));
    timer.unref();
    this.liveness = { id: grant.id, timer };
    return grant.id;
  }

  private dropLiveness(id: string, reason: string): void {
    if (this.liveness?.id !== id) return;
    clearInterval(this.liveness.timer);
    this.log.warn({ reason }, 'run-once liveness lease lost; a new one is taken for the next claim');
    this.liveness = null;
  }

  async claim(key: string, record: ClaimRecord): Promise<ClaimResult> {
    const alive = await this.livenessLease();
    const retention = await this.client.grantLease(this.retentionSeconds);
    const r = await this.client.call<TxnResponse>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [
        { request_put: { key: b64(key), value: b64(JSON.stringify(record)), lease: retention.id } },
        { request_put: { key: b64(`${key}/alive`), value: b64(record.node), lease: alive } },
      ],
      failure: [{ request_range: { key: b64(key) } }],
    });
    if (r.succeeded) {
      this.retentionLeases.set(key, retention.id);
      return { won: true, token: BigInt(r.header?.revision ?? '0') };
    }
    await this.client.revokeLease(retention.id).catch(() => {});
    const kv = r.responses?.[0]?.response_range?.kvs?.[0];
    return { won: false, token: BigInt(kv?.create_revision ?? '0'), record: JSON.parse(unb64(kv?.value)) as ClaimRecord };
  }

  async finish(key: string, record: ClaimRecord): Promise<void> {
    const lease = this.retentionLeases.get(key) ?? '0';
    await this.client.call<TxnResponse>('/v3/kv/txn', {
      compare: [],
      success: [
        { request_put: { key: b64(key), value: b64(JSON.stringify(record)), lease } },
        { request_delete_range: { key: b64(`${key}/alive`) } },
      ],
    });
    this.retentionLeases.delete(key);
  }

  async abandon(key: string, mine: ClaimRecord, final: ClaimRecord): Promise<void> {
    await this.client.call<TxnResponse>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'VALUE', result: 'EQUAL', value: b64(JSON.stringify(mine)) }],
      success: [
        { request_put: { key: b64(key), value: b64(JSON.stringify(final)), ignore_lease: true } },
        { request_delete_range: { key: b64(`${key}/alive`) } },
      ],
    });
  }

  async read(key: string): Promise<ClaimState | null> {
    const r = await this.client.call<TxnResponse>('/v3/kv/txn', {
      compare: [],
      success: [{ request_range: { key: b64(key) } }, { request_range: { key: b64(`${key}/alive`) } }],
    });
    const kv = r.responses?.[0]?.response_range?.kvs?.[0];
    if (!kv) return null;
    return {
      token: BigInt(kv.create_revision ?? '0'),
      record: JSON.parse(unb64(kv.value)) as ClaimRecord,
      winnerAlive: (r.responses?.[1]?.response_range?.kvs?.length ?? 0) > 0,
    };
  }

  async close(): Promise<void> {
    if (!this.liveness) return;
    clearInterval(this.liveness.timer);
    await this.client.revokeLease(this.liveness.id).catch(() => {});
    this.liveness = null;
  }
}
