/**
 * A minimal etcd v3 client over the JSON gateway (grpc-gateway) every etcd 3.4+ member
 * serves on its client port: POST /v3/<service>/<method> with JSON bodies, int64 as
 * decimal strings, keys and values base64 (src/etcd/wire.ts). Only what execgate needs.
 *
 * Every request has its own timeout; a request that cannot reach an endpoint (network
 * error, timeout, 5xx) is retried on the next endpoint, and the endpoint that answered
 * is preferred next time. An answer from etcd itself (e.g. "lease not found") is never
 * retried elsewhere.
 */

import { ETCD_ERRORS, EtcdResponseError, EtcdUnavailableError, type EtcdKeyValue, type LeaseGrant, type Txn, type TxnResult } from './api.js';
import { byCreateRevision, EtcdApiWithHelpers } from './helpers.js';
import { describeTlsFailure, tlsFetch, type EtcdFetch, type EtcdTlsMaterial } from './tls.js';
import { b64, decodeTxnResponse, encodeTxn, parseKv, prefixRangeEnd, type RawKv, type RawTxnResponse } from './wire.js';

// Callers that know only the client import these from here.
export * from './api.js';
export { prefixRangeEnd } from './wire.js';

export interface EtcdAuth {
  user: string;
  /** Read again when etcd refuses it, so a rotated password file takes effect without a restart. */
  password: () => string;
  /** The config key, e.g. "leadership.etcd.auth" (named in errors). */
  key: string;
  passwordFile: string;
}

export interface EtcdClientOptions {
  endpoints: string[];
  /** Per-request timeout. */
  requestTimeoutMs: number;
  /** Mutual TLS (https endpoints): the transport, and the files to name when a handshake fails. */
  tls?: EtcdTlsMaterial;
  /** etcd's authentication: a token from /v3/auth/authenticate on every request. */
  auth?: EtcdAuth;
  fetch?: EtcdFetch;
}

/** etcd refused the auth token (expired simple token, or none sent): log in again once. */
const TOKEN_REFUSED = /invalid auth token|user name is empty|auth token is expired/i;

export class EtcdClient extends EtcdApiWithHelpers {
  private preferred = 0;
  private readonly endpoints: string[];
  private readonly fetchImpl: EtcdFetch;
  private readonly closeTransport: () => void;
  /** The current auth token (shared by every request until etcd refuses it). */
  private token: Promise<string> | null = null;

  constructor(private readonly options: EtcdClientOptions) {
    super();
    if (options.endpoints.length === 0) throw new Error('etcd: no endpoints');
    this.endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    if (options.fetch) {
      this.fetchImpl = options.fetch;
      this.closeTransport = () => {};
    } else if (options.tls) {
      const t = tlsFetch(options.tls);
      this.fetchImpl = t.fetch;
      this.closeTransport = t.close;
    } else {
      this.fetchImpl = fetch;
      this.closeTransport = () => {};
    }
  }

  /** Drops kept-alive connections (a stopping gateway). */
  close(): void {
    this.closeTransport();
  }

  /** POSTs to the preferred endpoint, failing over to the others on transport errors. */
  async call<T>(path: string, body: unknown): Promise<T> {
    if (!this.options.auth) return this.post<T>(path, body, undefined);
    const token = await this.authToken();
    try {
      return await this.post<T>(path, body, token);
    } catch (err) {
      if (!(err instanceof EtcdResponseError) || !TOKEN_REFUSED.test(err.message)) throw err;
      // A simple token expires (etcd's --auth-token-ttl, 5 min by default): log in again once.
      if (this.token && (await this.token.catch(() => null)) === token) this.token = null;
      return this.post<T>(path, body, await this.authToken());
    }
  }

  private authToken(): Promise<string> {
    if (!this.token) {
      const p = this.authenticate();
      this.token = p;
      p.catch(() => {
        if (this.token === p) this.token = null;
      });
    }
    return this.token;
  }

  private async authenticate(): Promise<string> {
    const auth = this.options.auth!;
    let r: { token?: string };
    try {
      r = await this.post<{ token?: string }>('/v3/auth/authenticate', { name: auth.user, password: auth.password() }, undefined);
    } catch (err) {
      if (!(err instanceof EtcdResponseError)) throw err;
      if (/authentication is not enabled/i.test(err.message)) {
        throw new EtcdResponseError(err.status, err.grpcCode, `etcd has authentication off, but ${auth.key} is set: enable it with execgate etcd-setup --cluster FILE --apply (${err.message})`);
      }
      throw new EtcdResponseError(
        err.status,
        err.grpcCode,
        `etcd refused the login of user "${auth.user}" (${err.message}); check ${auth.key}.passwordFile (${auth.passwordFile}) against the password execgate etcd-setup set`,
      );
    }
    if (!r.token) throw new EtcdResponseError(200, null, 'etcd answered /v3/auth/authenticate without a token');
    return r.token;
  }

  private async post<T>(path: string, body: unknown, token: string | undefined): Promise<T> {
    const failures: string[] = [];
    const n = this.endpoints.length;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== undefined) headers.authorization = token;
    for (let attempt = 0; attempt < n; attempt++) {
      const index = (this.preferred + attempt) % n;
      const endpoint = this.endpoints[index]!;
      let response: Awaited<ReturnType<EtcdFetch>>;
      let text: string;
      try {
        response = await this.fetchImpl(`${endpoint}${path}`, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.requestTimeoutMs),
        });
        text = await response.text();
      } catch (err) {
        const tls = this.options.tls ? describeTlsFailure(err, this.options.tls) : null;
        failures.push(`${endpoint}: ${tls ?? describeFetchError(err)}`);
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
        if (/CommonName of client/i.test(text) && this.options.tls) {
          // etcd's JSON gateway refuses a client certificate that has a common name.
          failures.push(`${endpoint}: the member refuses ${this.options.tls.key}.certFile (${this.options.tls.certFile}) because it has a common name (CN); make one without (execgate certs does)`);
        } else failures.push(`${endpoint}: not JSON (HTTP ${response.status})`);
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
        const code = typeof obj.code === 'number' ? obj.code : null;
        if (code === 7 && this.options.auth && path !== '/v3/auth/authenticate') {
          throw new EtcdResponseError(response.status, code, `${message}: etcd user "${this.options.auth.user}" has no role for these keys; grant it with execgate etcd-setup --cluster FILE --apply`);
        }
        if (!this.options.auth && /user name is empty|permission denied/i.test(message)) {
          throw new EtcdResponseError(response.status, code, `${message}: etcd has authentication on; set the etcd user in auth (user, passwordFile) of this etcd block`);
        }
        throw new EtcdResponseError(response.status, code, message);
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
      if (err instanceof EtcdResponseError && (err.grpcCode === ETCD_ERRORS.leaseNotFound.grpcCode || /lease not found/.test(err.message))) return;
      throw err;
    }
  }

  async txn(t: Txn): Promise<TxnResult> {
    return decodeTxnResponse(await this.call<RawTxnResponse>('/v3/kv/txn', encodeTxn(t)), t);
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
    kvs.sort(byCreateRevision);
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
