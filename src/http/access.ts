import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import type { Request } from 'express';
import { peerUid as procPeerUid } from './peer.js';
import { unmapIPv4 } from '../address.js';

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = unmapIPv4(address);
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/**
 * A Host header naming an address literal or localhost. A browser tricked by DNS
 * rebinding sends the attacker's host name, so loopback trust needs this too.
 */
export function isLiteralHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || isIP(name) !== 0;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * 'token': the bearer token of http.token/http.tokenFile.
 * 'owner': no token is configured and the caller is a loopback socket owned by root or
 *   by the account execgate runs as (never granted while a token is configured).
 * 'none': neither; 'bad-token': an Authorization header that is not the token.
 */
export type Credential = 'owner' | 'token' | 'none' | 'bad-token';

export interface AccessPolicy {
  /** The bearer token; undefined when the node has none configured. */
  token: string | undefined;
  /** Uids whose loopback sockets count as 'owner' when no token is configured. */
  trustedUids: ReadonlySet<number>;
  /** Who owns the other end of a connection (overridable for tests). */
  peerUid: (socket: Socket) => Promise<number | null>;
}

export function defaultAccessPolicy(token: string | undefined): AccessPolicy {
  return { token, trustedUids: new Set([0, process.geteuid?.() ?? 0]), peerUid: cachedPeerUid() };
}

/** One look-up per connection: keep-alive requests reuse it. */
function cachedPeerUid(): (socket: Socket) => Promise<number | null> {
  const seen = new WeakMap<Socket, Promise<number | null>>();
  return (socket) => {
    let p = seen.get(socket);
    if (!p) {
      p = procPeerUid(socket).catch(() => null);
      seen.set(socket, p);
    }
    return p;
  };
}

/** Who is asking: the holder of the bearer token, the node's owner (only without a token), or anyone. */
export async function credentialOf(req: Request, policy: AccessPolicy): Promise<Credential> {
  const { token } = policy;
  const header = req.headers.authorization;
  if (token !== undefined) {
    if (header === undefined) {
      // With a token configured every caller needs it, loopback included: any local
      // account (a job run through this gateway, too) can open a loopback socket.
      return 'none';
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m && timingSafeEqual(digest(m[1]!), digest(token)) ? 'token' : 'bad-token';
  }
  // No token configured: the owner on loopback, whatever it sends (the CLI may carry
  // a token from a state directory that belongs to another gateway).
  const owner = isLoopbackAddress(req.socket.remoteAddress) && isLiteralHost(req.headers.host) && (await isTrustedPeer(req, policy));
  if (owner) return 'owner';
  return header === undefined ? 'none' : 'bad-token';
}

async function isTrustedPeer(req: Request, policy: AccessPolicy): Promise<boolean> {
  const uid = await policy.peerUid(req.socket);
  return uid !== null && policy.trustedUids.has(uid);
}

export const maySeeCommands = (c: Credential) => c === 'owner' || c === 'token';

/** A browser request from another site (a form POST or a script on a web page). */
export function isCrossSite(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}
