import type { AlgorithmKind } from './algorithms.js';
import { KINDS, WINDOW_MS } from './postureRecord.js';
import { isoTime } from '../time.js';

/** What the algorithm posture tells an operator, and the sentences for it. */

export type Tier = 'legacy' | 'compat';

export interface PostureUse {
  kind: AlgorithmKind;
  algorithm: string;
  tier: Tier;
  /** Handshakes of authenticated connections in the last 24 h (10-minute buckets). */
  handshakes24h: number;
  lastSeen: string;
  /** The last few distinct client identification strings, most recent first. */
  clients: string[];
}

export type PostureVerdict = 'in-use' | 'unused' | 'unused-short-record' | 'not-offered';

export interface PostureReport {
  /** auth.allowSshRsaSha1: the legacy algorithms are offered. */
  legacyOffered: boolean;
  /** When this node's record began (it survives restarts). */
  since: string;
  windowHours: number;
  /** True once the record is at least 24 h old. */
  coversWindow: boolean;
  verdict: PostureVerdict;
  /** Legacy algorithms negotiated in the last 24 h, most recently seen first. */
  legacy: PostureUse[];
  /** Algorithms kept in both profiles only for old clients (AES-CTR, non-ETM MACs), last 24 h. */
  compat: PostureUse[];
  /** One sentence an operator can act on (the page, `execgate status` and `execgate doctor` show it). */
  summary: string;
}

export const KIND_WORDS: Record<AlgorithmKind, string> = {
  kex: 'kex',
  'host-key': 'host key',
  cipher: 'cipher',
  mac: 'MAC',
  'user-auth': 'user signature',
};

/** "2026-12-01T10:00Z": minute precision is what an operator reads. */
export const minuteIso = (ms: number) => `${new Date(ms).toISOString().slice(0, 16)}Z`;

function describeUse(u: PostureUse): string {
  const clients = u.clients.length ? `, client${u.clients.length > 1 ? 's' : ''} ${u.clients.join(', ')}` : '';
  return `${u.algorithm} ${KIND_WORDS[u.kind]} (${u.handshakes24h} handshake${u.handshakes24h === 1 ? '' : 's'}, last ${minuteIso(Date.parse(u.lastSeen))}${clients})`;
}

/** The sentence for a report (also used on a peer's /status by `execgate doctor`). */
export function describePosture(r: Omit<PostureReport, 'summary'>, now = Date.now()): string {
  const used = r.legacy.map(describeUse).join('; ');
  switch (r.verdict) {
    case 'in-use':
      return `legacy algorithms negotiated in the last 24 h: ${used}; keep auth.allowSshRsaSha1: true until these clients are upgraded`;
    case 'unused':
      return `no legacy algorithm negotiated in the last 24 h (record since ${minuteIso(Date.parse(r.since))}): safe to set auth.allowSshRsaSha1: false as far as this node's clients go`;
    case 'unused-short-record': {
      const since = Date.parse(r.since);
      const hours = Math.max(0, (now - since) / 3600_000);
      return (
        `no legacy algorithm negotiated since ${minuteIso(since)}, but this record covers only ${hours.toFixed(1)} h of the last 24 h: ` +
        `not yet evidence that auth.allowSshRsaSha1: false is safe (ask again after ${minuteIso(since + WINDOW_MS)})`
      );
    }
    case 'not-offered':
      return r.legacy.length
        ? `legacy algorithms are not offered now (auth.allowSshRsaSha1: false); negotiated in the last 24 h before that: ${used}`
        : 'legacy algorithms are not offered (auth.allowSshRsaSha1: false) and none was negotiated in the last 24 h';
  }
}

/** The compat tier in one line ("" when none was negotiated). */
export function describeCompat(r: Pick<PostureReport, 'compat'>): string {
  if (!r.compat.length) return '';
  return `kept in both profiles for clients without AEAD ciphers or ETM MACs, negotiated in the last 24 h: ${r.compat.map(describeUse).join('; ')}`;
}

/** The report on `uses` (the algorithms seen in the last 24 h) at `now`. */
export function buildPostureReport(uses: PostureUse[], record: { since: number; legacyOffered: boolean }, now: number): PostureReport {
  uses.sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind)));
  const legacy = uses.filter((u) => u.tier === 'legacy');
  const compat = uses.filter((u) => u.tier === 'compat');
  const coversWindow = now - record.since >= WINDOW_MS;
  const verdict: PostureVerdict = !record.legacyOffered ? 'not-offered' : legacy.length ? 'in-use' : coversWindow ? 'unused' : 'unused-short-record';
  const partial: Omit<PostureReport, 'summary'> = {
    legacyOffered: record.legacyOffered,
    since: isoTime(record.since),
    windowHours: WINDOW_MS / 3600_000,
    coversWindow,
    verdict,
    legacy,
    compat,
  };
  return { ...partial, summary: describePosture(partial, now) };
}
