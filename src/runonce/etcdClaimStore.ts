import type { EtcdApi, EtcdKeyValue, TxnResult } from '../etcd/api.js';
import type { Logger } from '../log.js';
import type { ClaimRecord, ClaimResult, ClaimState, ClaimStore } from './claimStore.js';

/** The keys of the range op at index i of a transaction's responses. */
function rangeAt(r: TxnResult, i: number): EtcdKeyValue[] {
  const response = r.responses[i];
  if (response?.type !== 'range') throw new Error(`etcd txn: response ${i} is ${response?.type ?? 'missing'}, expected a range`);
  return response.kvs;
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
    private readonly client: EtcdApi,
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
    const timer = setInterval(
      () => {
        this.client.keepAlive(grant.id).then(
          (r) => {
            if (r.ttlSeconds <= 0) this.dropLiveness(grant.id, 'lease expired');
          },
          (err: Error) => this.log.warn({ err: err.message }, 'run-once liveness keepalive failed'),
        );
      },
      Math.max(250, (grant.ttlSeconds * 1000) / 3),
    );
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
    const r = await this.client.txn({
      compare: [{ key, target: 'create', result: 'equal', revision: 0n }],
      success: [
        { type: 'put', key, value: JSON.stringify(record), lease: retention.id },
        { type: 'put', key: `${key}/alive`, value: record.node, lease: alive },
      ],
      failure: [{ type: 'range', key }],
    });
    if (r.succeeded) {
      this.retentionLeases.set(key, retention.id);
      return { won: true, token: r.revision };
    }
    await this.client.revokeLease(retention.id).catch(() => {});
    const kv = rangeAt(r, 0)[0];
    if (!kv) throw new Error(`etcd txn: ${key} exists (the create comparison failed) yet its range came back empty`);
    return { won: false, token: kv.createRevision, record: JSON.parse(kv.value) as ClaimRecord };
  }

  async finish(key: string, record: ClaimRecord): Promise<void> {
    const lease = this.retentionLeases.get(key) ?? '0';
    await this.client.txn({
      compare: [],
      success: [
        { type: 'put', key, value: JSON.stringify(record), lease },
        { type: 'deleteRange', key: `${key}/alive` },
      ],
    });
    this.retentionLeases.delete(key);
  }

  async abandon(key: string, mine: ClaimRecord, final: ClaimRecord): Promise<void> {
    await this.client.txn({
      compare: [{ key, target: 'value', result: 'equal', value: JSON.stringify(mine) }],
      success: [
        { type: 'put', key, value: JSON.stringify(final), ignoreLease: true },
        { type: 'deleteRange', key: `${key}/alive` },
      ],
    });
  }

  async read(key: string): Promise<ClaimState | null> {
    const r = await this.client.txn({
      compare: [],
      success: [
        { type: 'range', key },
        { type: 'range', key: `${key}/alive` },
      ],
    });
    const kv = rangeAt(r, 0)[0];
    if (!kv) return null;
    return { token: kv.createRevision, record: JSON.parse(kv.value) as ClaimRecord, winnerAlive: rangeAt(r, 1).length > 0 };
  }

  async close(): Promise<void> {
    if (!this.liveness) return;
    clearInterval(this.liveness.timer);
    await this.client.revokeLease(this.liveness.id).catch(() => {});
    this.liveness = null;
  }
}
