import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { replicaPathProblem } from './scriptPath.js';
import { PEER_HEADERS, PEER_SCRIPT_PATH } from './peerEndpoint.js';

/** What a session asks of replication (src/command/dispatchScripts.ts). */
export interface ScriptReplicaPort {
  /**
   * `scp -t <path>` (run as uid) has stored the file here: copy it (owner, group, mode) to
   * every peer. The sink's last acknowledgement waits for this (src/cluster/scpAckGate.ts). Never throws.
   */
  afterUpload(path: string, uid: number): Promise<void>;
  /** `rm -f <path>` exited 0 here, run as uid: remove the copies on every peer (before the exit status goes out). Never throws. */
  afterRemove(path: string, uid: number): Promise<void>;
  /** Why this node has no copy of path, when it knows (it refused one, or replication is off). */
  whyMissing(path: string): string | null;
}

export interface ReplicaPeer {
  name: string;
  /** http://<address>:<httpPort> */
  url: string;
}

export interface ScriptReplicatorOptions {
  node: string;
  peers: readonly ReplicaPeer[];
  /** The cluster's shared token (http.token/http.tokenFile); without one nothing is sent. */
  token: string | undefined;
  maxBytes: number;
  timeoutMs: number;
  directories: readonly string[];
  log: Logger;
  metrics: Pick<Metrics, 'scriptReplication'>;
}

type PeerResult = { peer: string; result: 'ok' | 'failed' | 'refused'; why?: string };

/** What went wrong with one request, in words (the cause of fetch's "fetch failed", a timeout). */
function requestError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs} ms (leadership.scriptReplication.timeoutMs)`;
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

/**
 * The sending side of dispatch-script replication: once Rundeck's upload is stored here,
 * the file goes to every other node's /peer/dispatch-script (in parallel, each bounded by
 * timeoutMs) before the client is told the upload succeeded; after its rm, the copies are
 * removed the same way. A peer that does not take the copy is logged, never fatal: the
 * upload has succeeded on this node.
 */
export class ScriptReplicator {
  constructor(private readonly opts: ScriptReplicatorOptions) {}

  async afterUpload(path: string, uid: number): Promise<void> {
    const { peers, log, metrics } = this.opts;
    if (peers.length === 0) return;
    let results: PeerResult[];
    try {
      const file = await this.readUpload(path, uid);
      if (typeof file === 'string') results = peers.map((p) => ({ peer: p.name, result: 'failed', why: file }));
      else results = await Promise.all(peers.map((p) => this.put(p, path, file.content, file.mode, file.uid, file.gid)));
    } catch (err) {
      results = peers.map((p) => ({ peer: p.name, result: 'failed', why: (err as Error).message }));
    }
    for (const r of results) metrics.scriptReplication.inc({ result: r.result });
    const missed = results.filter((r) => r.result !== 'ok');
    if (missed.length === 0) {
      log.info({ path, peers: results.map((r) => r.peer) }, 'dispatch script copied to every peer');
      return;
    }
    const failed = missed.map((r) => ({ peer: r.peer, result: r.result, why: r.why }));
    const none = missed.length === results.length;
    log.warn(
      { path, failed, copiedTo: results.filter((r) => r.result === 'ok').map((r) => r.peer) },
      none
        ? 'no standby received the dispatch script: the upload succeeded here only; an exec that reaches another node after a failover is refused (exit 75)'
        : 'the dispatch script did not reach every peer; an exec that reaches one of those after a failover is refused (exit 75)',
    );
  }

  async afterRemove(path: string, uid: number): Promise<void> {
    const { peers, log } = this.opts;
    if (peers.length === 0 || replicaPathProblem(path, this.opts.directories) !== null || this.opts.token === undefined) return;
    const results = await Promise.all(peers.map((p) => this.request(p, 'DELETE', path, { [PEER_HEADERS.uid]: String(uid) })));
    const missed = results.filter((r) => r.result !== 'ok');
    if (missed.length > 0) log.warn({ path, failed: missed }, 'the dispatch script may be left on these peers (their rm failed); they remove copies older than an hour');
  }

  /** The uploaded file and its owner and mode, or why it is not sent. Never follows a symbolic link. */
  private async readUpload(path: string, uid: number): Promise<{ content: Buffer; mode: number; uid: number; gid: number } | string> {
    const problem = replicaPathProblem(path, this.opts.directories);
    if (problem) return `not replicated: ${problem}`;
    if (this.opts.token === undefined) return 'not replicated: this node has no http.token or http.tokenFile (set gateway.http.tokenFile, the same token on every node)';
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return `not replicated: ${path} is not a regular file`;
      // The file the account uploaded, not one it pointed the name at.
      if (st.uid !== uid) return `not replicated: ${path} is owned by uid ${st.uid}, not by the account that uploaded it (uid ${uid})`;
      if (st.size > this.opts.maxBytes) return `not replicated: ${st.size} bytes is over leadership.scriptReplication.maxBytes (${this.opts.maxBytes})`;
      const content = await fh.readFile();
      if (content.length > this.opts.maxBytes) return `not replicated: ${content.length} bytes is over leadership.scriptReplication.maxBytes (${this.opts.maxBytes})`;
      return { content, mode: st.mode & 0o777, uid: st.uid, gid: st.gid };
    } finally {
      await fh.close();
    }
  }

  private put(peer: ReplicaPeer, path: string, content: Buffer, mode: number, uid: number, gid: number): Promise<PeerResult> {
    return this.request(
      peer,
      'PUT',
      path,
      {
        [PEER_HEADERS.mode]: mode.toString(8),
        [PEER_HEADERS.uid]: String(uid),
        [PEER_HEADERS.gid]: String(gid),
        'content-type': 'application/octet-stream',
      },
      content,
    );
  }

  private async request(peer: ReplicaPeer, method: 'PUT' | 'DELETE', path: string, headers: Record<string, string>, body?: Buffer): Promise<PeerResult> {
    const { timeoutMs, token, node } = this.opts;
    try {
      const res = await fetch(new URL(PEER_SCRIPT_PATH, peer.url), {
        method,
        headers: { ...headers, authorization: `Bearer ${token}`, [PEER_HEADERS.path]: encodeURIComponent(path), [PEER_HEADERS.from]: node },
        ...(body ? { body: new Uint8Array(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      if (res.ok) return { peer: peer.name, result: 'ok' };
      let why = `HTTP ${res.status}`;
      try {
        why += `: ${(JSON.parse(text) as { error?: string }).error ?? text.slice(0, 200)}`;
      } catch {
        why += `: ${text.slice(0, 200)}`;
      }
      return { peer: peer.name, result: res.status >= 400 && res.status < 500 ? 'refused' : 'failed', why };
    } catch (err) {
      return { peer: peer.name, result: 'failed', why: requestError(err, timeoutMs) };
    }
  }
}
