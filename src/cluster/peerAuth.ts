import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Logger } from '../log.js';

/** Every peer-only endpoint is under this path; nothing there answers without the cluster's token. */
export const PEER_PREFIX = '/peer';
/** Who sent a peer request (a node name; informational, never trusted). */
export const PEER_FROM_HEADER = 'x-execgate-from';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Exactly the cluster's token; never the loopback "owner" trust of the admin endpoints. */
export function hasClusterToken(req: Pick<Request, 'headers'>, token: string | undefined): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return token !== undefined && m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

/**
 * At most `perWindow` log lines per remote address per window: a scanner hammering
 * /peer/* cannot flood the journal, and the first line after a quiet window says how
 * many refusals went unlogged.
 */
export class RefusalLogBudget {
  private readonly seen = new Map<string, { start: number; logged: number; suppressed: number }>();

  constructor(
    private readonly perWindow = 5,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** null: do not log this one; otherwise how many earlier refusals from this address were not logged. */
  take(address: string): { suppressed: number } | null {
    const t = this.now();
    if (this.seen.size > 1000) for (const [a, e] of this.seen) if (t - e.start >= this.windowMs) this.seen.delete(a);
    let e = this.seen.get(address);
    let suppressed = 0;
    if (!e || t - e.start >= this.windowMs) {
      suppressed = e?.suppressed ?? 0;
      e = { start: t, logged: 0, suppressed: 0 };
      this.seen.set(address, e);
    }
    if (e.logged >= this.perWindow) {
      e.suppressed++;
      return null;
    }
    e.logged++;
    return { suppressed };
  }
}

/**
 * Guards everything under /peer: a request without the cluster's token (gateway.http.tokenFile,
 * the same file on every node) or with a wrong one is refused with 401 and logged as a
 * warning with the remote address and what it asked for.
 */
export function peerTokenGuard(deps: { token: string | undefined; log?: Logger; budget?: RefusalLogBudget }): RequestHandler {
  const { token, log } = deps;
  const budget = deps.budget ?? new RefusalLogBudget();
  return (req, res, next) => {
    if (hasClusterToken(req, token)) return void next();
    const why = token === undefined ? 'this node has no http.token or http.tokenFile' : req.headers.authorization ? 'wrong bearer token' : 'no bearer token';
    const peer = req.socket.remoteAddress ?? 'unknown';
    const logged = budget.take(peer);
    if (logged) {
      const from = req.headers[PEER_FROM_HEADER];
      log?.warn(
        { peer, from: typeof from === 'string' ? from : null, method: req.method, path: req.originalUrl.slice(0, 200), why, ...(logged.suppressed ? { unloggedBefore: logged.suppressed } : {}) },
        'refused a peer request without the cluster token',
      );
    }
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer')
      .json({ error: `${why}: peers send the cluster's token (gateway.http.tokenFile, the same file on every node) as "Authorization: Bearer <token>"` });
  };
}
