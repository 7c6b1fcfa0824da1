import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Request } from 'express';

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
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

export type Credential = 'loopback' | 'token' | 'none' | 'bad-token';

/** Who is asking: a loopback caller, a holder of the bearer token, or anyone. */
export function credentialOf(req: Request, token: string | undefined): Credential {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m || token === undefined || !timingSafeEqual(digest(m[1]!), digest(token))) return 'bad-token';
    return 'token';
  }
  if (isLoopbackAddress(req.socket.remoteAddress) && isLiteralHost(req.headers.host)) return 'loopback';
  return 'none';
}

export const maySeeCommands = (c: Credential) => c === 'loopback' || c === 'token';

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
