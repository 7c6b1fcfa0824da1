import { readFileSync, renameSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { NegotiatedAlgorithms } from 'ssh2';
import { algorithmTiers, type AlgorithmKind, type AlgorithmsByKind } from './algorithms.js';

/**
 * Algorithm posture: which legacy algorithms (what auth.allowSshRsaSha1: false would
 * stop offering) clients actually negotiated in the last 24 h, how often, when last,
 * and which client software, so an operator knows when turning them off breaks nobody.
 *
 * Only authenticated connections count: a scanner (ssh-audit, a vulnerability
 * scanner) that completes a key exchange and leaves is not a client that needs
 * anything. A rekey is a handshake too and counts again.
 *
 * The record is kept in the state directory (algorithm-posture.json) so a restart
 * does not make the last 24 h look clean: written at most once a minute and on
 * shutdown, atomically (temporary file, fsync, rename). A missing file starts an
 * empty record; a corrupt one is moved aside (".corrupt") and logged. Failing to
 * write is logged and retried; it never reaches a connection.
 */

export const POSTURE_FILE = 'algorithm-posture.json';
export const WINDOW_MS = 24 * 3600 * 1000;
/** Counts are kept per 10 minutes: "in the last 24 h" counts cover 24 h to 24 h 10 min. */
export const BUCKET_MS = 10 * 60 * 1000;
/** Distinct client idents kept per algorithm (the most recent). */
export const MAX_CLIENTS = 5;
const FLUSH_INTERVAL_MS = 60_000;
/** RFC 4253 allows 255 bytes; longer would only serve someone filling the record. */
const MAX_IDENT_CHARS = 128;

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

interface Entry {
  kind: AlgorithmKind;
  algorithm: string;
  firstSeen: number;
  lastSeen: number;
  /** Bucket start (ms) -> handshakes. */
  buckets: Map<number, number>;
  clients: Array<{ ident: string; lastSeen: number }>;
}

const KINDS = ['kex', 'host-key', 'cipher', 'mac', 'user-auth'] as const;

const fileSchema = z.object({
  version: z.literal(1),
  since: z.number().nonnegative(),
  entries: z.array(
    z.object({
      kind: z.enum(KINDS),
      algorithm: z.string().min(1).max(100),
      firstSeen: z.number().nonnegative(),
      lastSeen: z.number().nonnegative(),
      buckets: z.array(z.tuple([z.number().nonnegative(), z.int().positive()])),
      clients: z.array(z.object({ ident: z.string().max(MAX_IDENT_CHARS), lastSeen: z.number().nonnegative() })),
    }),
  ),
});

export const KIND_WORDS: Record<AlgorithmKind, string> = {
  kex: 'kex',
  'host-key': 'host key',
  cipher: 'cipher',
  mac: 'MAC',
  'user-auth': 'user signature',
};

/** "2026-12-01T10:00Z": minute precision is what an operator reads. */
export const minuteIso = (ms: number) => `${new Date(ms).toISOString().slice(0, 16)}Z`;

/** Printable ASCII only, bounded: the ident comes from an unauthenticated peer. */
export function cleanIdent(raw: string): string {
  const text = raw.replace(/[^\x20-\x7e]/g, '?').trim();
  return (text.length > MAX_IDENT_CHARS ? text.slice(0, MAX_IDENT_CHARS) : text) || '(empty)';
}

/** The MAC label for a negotiated algorithm set: ssh2 reports "" with an AEAD cipher (GCM, ChaCha20-Poly1305). */
export const macName = (mac: string) => (mac === '' ? 'implicit' : mac);

export interface PostureLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface AlgorithmPostureOptions {
  /** The record file, or null to keep it in memory only. */
  path: string | null;
  /** auth.allowSshRsaSha1. */
  legacyOffered: boolean;
  log: PostureLog;
  now?: () => number;
  /** The tiers to watch (default: algorithmTiers() of src/ssh/algorithms.ts). */
  tiers?: { legacy: AlgorithmsByKind; compat: AlgorithmsByKind };
}

export class AlgorithmPosture {
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly tierOf = new Map<string, Tier>();
  private since: number;
  private dirty = false;
  private failing = false;
  private timer: NodeJS.Timeout | null = null;
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly options: AlgorithmPostureOptions) {
    this.now = options.now ?? Date.now;
    const tiers = options.tiers ?? algorithmTiers();
    for (const tier of ['compat', 'legacy'] as const) {
      for (const kind of KINDS) for (const a of tiers[tier][kind]) this.tierOf.set(`${kind} ${a}`, tier);
    }
    this.since = this.now();
    this.load();
  }

  /** Starts the once-a-minute write. */
  start(): void {
    if (this.timer || !this.options.path) return;
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** A completed key exchange (initial or rekey) of an authenticated connection. */
  recordHandshake(n: NegotiatedAlgorithms, identRaw: string): void {
    try {
      const t = this.now();
      const ident = cleanIdent(identRaw);
      this.use('kex', n.kex, ident, t);
      this.use('host-key', n.serverHostKey, ident, t);
      for (const c of new Set([n.cs.cipher, n.sc.cipher])) this.use('cipher', c, ident, t);
      for (const m of new Set([n.cs.mac, n.sc.mac])) if (m) this.use('mac', m, ident, t);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'algorithm posture: could not record a handshake');
    }
  }

  /** A successful user authentication signed with this algorithm (ssh-rsa = SHA-1). */
  recordUserAuth(signatureAlgorithm: string, identRaw: string): void {
    try {
      this.use('user-auth', signatureAlgorithm, cleanIdent(identRaw), this.now());
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'algorithm posture: could not record a user authentication');
    }
  }

  private use(kind: AlgorithmKind, algorithm: string, ident: string, t: number): void {
    const key = `${kind} ${algorithm}`;
    if (!this.tierOf.has(key)) return;
    let e = this.entries.get(key);
    if (!e) {
      e = { kind, algorithm, firstSeen: t, lastSeen: t, buckets: new Map(), clients: [] };
      this.entries.set(key, e);
    }
    e.lastSeen = Math.max(e.lastSeen, t);
    const bucket = t - (t % BUCKET_MS);
    e.buckets.set(bucket, (e.buckets.get(bucket) ?? 0) + 1);
    const i = e.clients.findIndex((c) => c.ident === ident);
    if (i >= 0) e.clients.splice(i, 1);
    e.clients.unshift({ ident, lastSeen: t });
    e.clients.length = Math.min(e.clients.length, MAX_CLIENTS);
    this.prune(e, t);
    this.dirty = true;
  }

  private prune(e: Entry, t: number): void {
    for (const b of e.buckets.keys()) if (b + BUCKET_MS <= t - WINDOW_MS) e.buckets.delete(b);
  }

  report(): PostureReport {
    const t = this.now();
    const uses: PostureUse[] = [];
    for (const [key, e] of this.entries) {
      if (t - e.lastSeen >= WINDOW_MS) continue;
      this.prune(e, t);
      let count = 0;
      for (const n of e.buckets.values()) count += n;
      uses.push({
        kind: e.kind,
        algorithm: e.algorithm,
        tier: this.tierOf.get(key)!,
        handshakes24h: count,
        lastSeen: new Date(e.lastSeen).toISOString(),
        clients: e.clients.map((c) => c.ident),
      });
    }
    uses.sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind)));
    const legacy = uses.filter((u) => u.tier === 'legacy');
    const compat = uses.filter((u) => u.tier === 'compat');
    const coversWindow = t - this.since >= WINDOW_MS;
    const verdict: PostureVerdict = !this.options.legacyOffered ? 'not-offered' : legacy.length ? 'in-use' : coversWindow ? 'unused' : 'unused-short-record';
    const partial: Omit<PostureReport, 'summary'> = {
      legacyOffered: this.options.legacyOffered,
      since: new Date(this.since).toISOString(),
      windowHours: WINDOW_MS / 3600_000,
      coversWindow,
      verdict,
      legacy,
      compat,
    };
    return { ...partial, summary: describePosture(partial, t) };
  }

  /** Writes the record if it changed; never throws. */
  flush(): Promise<void> {
    this.writes = this.writes.then(() => this.writeOnce());
    return this.writes;
  }

  private async writeOnce(): Promise<void> {
    const path = this.options.path;
    if (!path || !this.dirty) return;
    this.dirty = false;
    const t = this.now();
    const body = {
      version: 1,
      since: this.since,
      entries: [...this.entries.values()].map((e) => {
        this.prune(e, t);
        return { ...e, buckets: [...e.buckets.entries()] };
      }),
    };
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(body)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      if (this.failing) this.options.log.info({ path }, 'algorithm posture record written again');
      this.failing = false;
    } catch (err) {
      this.dirty = true; // retried at the next minute and on shutdown
      await unlink(tmp).catch(() => {});
      if (!this.failing) {
        this.options.log.warn(
          { path, err: (err as Error).message },
          `cannot write the algorithm posture record ${path}: ${(err as Error).message}; it is kept in memory and retried every minute (check that the state directory is writable by execgate's account)`,
        );
      }
      this.failing = true;
    }
  }

  private load(): void {
    const path = this.options.path;
    if (!path) return;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.dirty = true; // write the start time, so a restart keeps it
        this.options.log.info({ path }, 'algorithm posture: no record yet; starting one');
      } else {
        this.options.log.warn({ path, err: (err as Error).message }, `cannot read the algorithm posture record ${path}: ${(err as Error).message}; starting an empty record`);
      }
      return;
    }
    let parsed: z.infer<typeof fileSchema>;
    try {
      const result = fileSchema.safeParse(JSON.parse(text));
      if (!result.success) throw new Error(result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).slice(0, 3).join('; '));
      parsed = result.data;
    } catch (err) {
      const aside = `${path}.corrupt`;
      let moved = false;
      try {
        renameSync(path, aside);
        moved = true;
      } catch {
        // the empty record's first write replaces it
      }
      this.dirty = true;
      this.options.log.warn(
        { path, err: (err as Error).message },
        `the algorithm posture record ${path} is corrupt (${(err as Error).message}); ${moved ? `moved it to ${aside} and ` : ''}started an empty record: legacy algorithm use is known only from now on`,
      );
      return;
    }
    const t = this.now();
    // A record from the future (clock stepped back) cannot vouch for the past 24 h.
    this.since = Math.min(parsed.since, t);
    for (const e of parsed.entries) {
      const key = `${e.kind} ${e.algorithm}`;
      if (!this.tierOf.has(key)) continue; // no longer watched
      const entry: Entry = {
        kind: e.kind,
        algorithm: e.algorithm,
        firstSeen: e.firstSeen,
        lastSeen: e.lastSeen,
        buckets: new Map(e.buckets),
        clients: e.clients.slice(0, MAX_CLIENTS),
      };
      this.prune(entry, t);
      this.entries.set(key, entry);
    }
  }
}

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
