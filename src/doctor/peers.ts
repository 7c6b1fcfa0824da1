import type { PostureReport } from '../ssh/postureReport.js';
import type { ClusterNode } from '../config/cluster.js';
import { describeTlsFailure, tlsFetch, type EtcdTlsMaterial } from '../etcd/tls.js';

/** The part of a node's /status the doctor reads. */
export interface PeerStatus {
  node: string;
  role: string;
  token: string | null;
  leader: string | null;
  hostKeys: Array<{ type: string; fingerprint: string }>;
  /** Legacy SSH algorithms negotiated in the last 24 h (absent from an older execgate). */
  algorithms?: Pick<PostureReport, 'verdict' | 'summary' | 'legacy' | 'since' | 'coversWindow' | 'legacyOffered'> | null;
}

export interface PeerAnswer {
  node: ClusterNode;
  url: string;
  status?: PeerStatus;
  error?: string;
  /** Peer clock minus ours (ms), from its Date header and the request's midpoint. */
  skewMs?: number;
  rttMs?: number;
}

export async function askPeer(node: ClusterNode, timeoutMs = 3000, token?: string): Promise<PeerAnswer> {
  const url = `http://${node.address}:${node.httpPort}/status`;
  const t0 = Date.now();
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const t1 = Date.now();
    const text = await res.text();
    if (!res.ok) return { node, url, error: `HTTP ${res.status}: ${text.slice(0, 200)}` };
    let status: PeerStatus;
    try {
      status = JSON.parse(text) as PeerStatus;
    } catch {
      return { node, url, error: `answered something that is not JSON: ${text.slice(0, 100)}` };
    }
    const date = res.headers.get('date');
    const peerMs = date ? Date.parse(date) : NaN;
    // The Date header has one-second resolution: the peer's clock lies in [peerMs, peerMs + 1000).
    const skewMs = Number.isFinite(peerMs) ? Math.round(peerMs + 500 - (t0 + t1) / 2) : undefined;
    return { node, url, status, skewMs, rttMs: t1 - t0 };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const reason = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { node, url, error: reason };
  }
}

export interface EtcdHealth {
  endpoint: string;
  ok: boolean;
  detail: string;
}

/**
 * etcd's own GET /health: {"health":"true"} on a member that has a leader and quorum. A
 * member with --client-cert-auth answers it only over mutual TLS: pass this node's TLS files.
 */
export async function etcdHealth(endpoint: string, timeoutMs = 3000, tls?: EtcdTlsMaterial): Promise<EtcdHealth> {
  const url = `${endpoint.replace(/\/+$/, '')}/health`;
  const transport = tls ? tlsFetch(tls) : null;
  try {
    const signal = AbortSignal.timeout(timeoutMs);
    const res = transport ? await transport.fetch(url, { method: 'GET', headers: {}, body: '', signal }) : await fetch(url, { signal });
    const text = await res.text();
    let healthy = false;
    try {
      const body = JSON.parse(text) as { health?: string | boolean; reason?: string };
      healthy = body.health === 'true' || body.health === true;
      return { endpoint, ok: res.ok && healthy, detail: healthy ? 'healthy' : `unhealthy: ${body.reason ?? text.slice(0, 120)}` };
    } catch {
      return { endpoint, ok: false, detail: `HTTP ${res.status}: ${text.slice(0, 120)}` };
    }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string }; code?: string };
    const words = tls ? describeTlsFailure(err, tls) : null;
    return { endpoint, ok: false, detail: e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : (words ?? e.cause?.code ?? e.code ?? e.message) };
  } finally {
    transport?.close();
  }
}
