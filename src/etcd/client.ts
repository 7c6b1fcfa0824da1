/**
 * A minimal etcd v3 client over the JSON gateway (grpc-gateway) every etcd 3.4+ member
 * serves on its client port: POST /v3/<service>/<method> with JSON bodies, int64 as
 * decimal strings, keys and values base64. Only what leader election needs.
 *
 * Every request has its own timeout; a request that cannot reach an endpoint (network
 * error, timeout, 5xx) is retried on the next endpoint, and the endpoint that answered
 * is preferred next time. An answer from etcd itself (e.g. "lease not found") is never
 * retried elsewhere.
 */

export interface EtcdKeyValue {
  key: string;
  value: string;
  createRevision: bigint;
  modRevision: bigint;
  /** Lease id (decimal string), "0" when the key has no lease. */
  lease: string;
}

export interface LeaseGrant {
  id: string;
  /** The TTL etcd granted (may exceed the requested one). */
  ttlSeconds: number;
}

/** What leader election needs from etcd; EtcdClient talks to a real cluster, tests fake it. */
export interface EtcdApi {
  grantLease(ttlSeconds: number): Promise<LeaseGrant>;
  /** One keepalive round trip; ttlSeconds 0 means the lease no longer exists. */
  keepAlive(leaseId: string): Promise<{ ttlSeconds: number }>;
  /** Revokes a lease (deleting its keys); a lease already gone is not an error. */
  revokeLease(leaseId: string): Promise<void>;
  /** Creates key bound to the lease unless it exists; returns the key as stored now. */
  putIfAbsent(key: string, value: string, leaseId: string): Promise<{ created: boolean; kv: EtcdKeyValue | null }>;
  /** Replaces the value of a key only while it is the one created at createRevision; false otherwise. */
  putIfCreated(key: string, value: string, leaseId: string, createRevision: bigint): Promise<boolean>;
  /** Every key under the prefix, oldest create revision first. */
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

const GRPC_NOT_FOUND = 5;

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** The smallest key greater than every key starting with prefix (etcd's range_end). */
export function prefixRangeEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = end[i]! + 1;
      return end.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64'); // every key
}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  lease?: string;
}

function parseKv(raw: RawKv): EtcdKeyValue {
  return {
    key: unb64(raw.key),
    value: unb64(raw.value),
    createRevision: BigInt(raw.create_revision ?? '0'),
    modRevision: BigInt(raw.mod_revision ?? '0'),
    lease: raw.lease ?? '0',
  };
}

export interface EtcdClientOptions {
  endpoints: string[];
  /** Per-request timeout. */
  requestTimeoutMs: number;
  fetch?: typeof fetch;
}

export class EtcdClient implements EtcdApi {
  private preferred = 0;
  private readonly endpoints: string[];
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new Error('etcd: no endpoints');
    this.endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** POSTs to the preferred endpoint, failing over to the others on transport errors. */
  async call<T>(path: string, body: unknown): Promise<T> {
    const failures: string[] = [];
    const n = this.endpoints.length;
    for (let attempt = 0; attempt < n; attempt++) {
      const index = (this.preferred + attempt) % n;
      const endpoint = this.endpoints[index]!;
      let response: Response;
      let text: string;
      try {
        response = await this.fetchImpl(`${endpoint}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.requestTimeoutMs),
        });
        text = await response.text();
      } catch (err) {
        failures.push(`${endpoint}: ${describeFetchError(err)}`);
        continue;
      }
      if (response.status === 502 || response.status === 503 || response.status === 504) {
        // A proxy in the way, or a member without quorum: another member may do better.
        failures.push(`${endpoint}: HTTP ${response.status}`);
        continue;
      }
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text.split('\n')[0]!) : {};
      } catch {
        failures.push(`${endpoint}: not JSON (HTTP ${response.status})`);
        continue;
      }
      const obj = parsed as { error?: unknown; message?: string; code?: number; result?: unknown };
      if (!response.ok || obj.error !== undefined) {
        const message = typeof obj.message === 'string' ? obj.message : typeof obj.error === 'string' ? obj.error : `HTTP ${response.status}`;
        // "no leader" / "timed out" come from a member cut off from quorum: try another.
        if (/no leader|timed out|leader changed|not capable|too many requests/i.test(message)) {
          failures.push(`${endpoint}: ${message}`);
          continue;
        }
        this.preferred = index;
        throw new EtcdResponseError(response.status, typeof obj.code === 'number' ? obj.code : null, message);
      }
      this.preferred = index;
      return parsed as T;
    }
    throw new EtcdUnavailableError(failures.join('; '));
  }

  async grantLease(ttlSeconds: number): Promise<LeaseGrant> {
    const r = await this.call<{ ID?: string; TTL?: string; error?: string }>('/v3/lease/grant', { TTL: String(Math.ceil(ttlSeconds)), ID: '0' });
    if (!r.ID || !r.TTL) throw new EtcdResponseError(200, null, `lease grant answered without ID/TTL`);
    return { id: r.ID, ttlSeconds: Number(r.TTL) };
  }

  async keepAlive(leaseId: string): Promise<{ ttlSeconds: number }> {
    // A streaming RPC through the gateway: one request object in, one result line out.
    const r = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: leaseId });
    return { ttlSeconds: Number(r.result?.TTL ?? '0') };
  }

  async revokeLease(leaseId: string): Promise<void> {
    try {
      await this.call('/v3/lease/revoke', { ID: leaseId });
    } catch (err) {
      if (err instanceof EtcdResponseError && (err.grpcCode === GRPC_NOT_FOUND || /lease not found/.test(err.message))) return;
      throw err;
    }
  }

  async putIfAbsent(key: string, value: string, leaseId: string): Promise<{ created: boolean; kv: EtcdKeyValue | null }> {
    const k = b64(key);
    const r = await this.call<{
      succeeded?: boolean;
      header?: { revision?: string };
      responses?: Array<{ response_range?: { kvs?: RawKv[] } }>;
    }>('/v3/kv/txn', {
      compare: [{ key: k, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key: k, value: b64(value), lease: leaseId } }],
      failure: [{ request_range: { key: k } }],
    });
    if (r.succeeded) {
      const revision = BigInt(r.header?.revision ?? '0');
      return { created: true, kv: { key, value, createRevision: revision, modRevision: revision, lease: leaseId } };
    }
    const raw = r.responses?.[0]?.response_range?.kvs?.[0];
    return { created: false, kv: raw ? parseKv(raw) : null };
  }

  async putIfCreated(key: string, value: string, leaseId: string, createRevision: bigint): Promise<boolean> {
    const k = b64(key);
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ key: k, target: 'CREATE', result: 'EQUAL', create_revision: createRevision.toString() }],
      success: [{ request_put: { key: k, value: b64(value), lease: leaseId } }],
    });
    return r.succeeded === true;
  }

  async rangePrefix(prefix: string): Promise<{ kvs: EtcdKeyValue[]; revision: bigint }> {
    const r = await this.call<{ header?: { revision?: string }; kvs?: RawKv[] }>('/v3/kv/range', {
      key: b64(prefix),
      range_end: prefixRangeEnd(prefix),
      sort_order: 'ASCEND',
      sort_target: 'CREATE',
    });
    const kvs = (r.kvs ?? []).map(parseKv);
    // Sorted by etcd already; sort again so a fake or an old member cannot mislead us.
    kvs.sort((a, b) => (a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1 : 0));
    return { kvs, revision: BigInt(r.header?.revision ?? '0') };
  }
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code) return cause.code;
    if (cause?.message) return cause.message;
    return err.message;
  }
  return String(err);
}
