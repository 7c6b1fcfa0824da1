import type { NegotiatedAlgorithms } from 'ssh2';
import { algorithmTiers, type AlgorithmKind, type AlgorithmsByKind } from './algorithms.js';
import { cleanIdent, countUse, encodeRecord, handshakeCount, KINDS, pruneBuckets, WINDOW_MS, type PostureEntry } from './postureRecord.js';
import { buildPostureReport, type PostureReport, type PostureUse, type Tier } from './postureReport.js';
import { readPostureFile, writePostureFile, type PostureLog } from './postureFile.js';
import { isoTime } from '../time.js';

// Still imported from here by src/doctor/; their home is postureReport.ts.

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
const FLUSH_INTERVAL_MS = 60_000;

/** The MAC label for a negotiated algorithm set: ssh2 reports "" with an AEAD cipher (GCM, ChaCha20-Poly1305). */
export const macName = (mac: string) => (mac === '' ? 'implicit' : mac);

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
  private readonly entries = new Map<string, PostureEntry>();
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
    countUse(e, ident, t);
    this.dirty = true;
  }

  report(): PostureReport {
    const t = this.now();
    const uses: PostureUse[] = [];
    for (const [key, e] of this.entries) {
      if (t - e.lastSeen >= WINDOW_MS) continue;
      pruneBuckets(e, t);
      uses.push({
        kind: e.kind,
        algorithm: e.algorithm,
        tier: this.tierOf.get(key)!,
        handshakes24h: handshakeCount(e),
        lastSeen: isoTime(e.lastSeen),
        clients: e.clients.map((c) => c.ident),
      });
    }
    return buildPostureReport(uses, { since: this.since, legacyOffered: this.options.legacyOffered }, t);
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
    for (const e of this.entries.values()) pruneBuckets(e, t);
    try {
      await writePostureFile(path, encodeRecord({ since: this.since, entries: [...this.entries.values()] }));
      if (this.failing) this.options.log.info({ path }, 'algorithm posture record written again');
      this.failing = false;
    } catch (err) {
      this.dirty = true; // retried at the next minute and on shutdown
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
    const { record, dirty } = readPostureFile(path, this.options.log);
    this.dirty = dirty;
    if (!record) return;
    const t = this.now();
    // A record from the future (clock stepped back) cannot vouch for the past 24 h.
    this.since = Math.min(record.since, t);
    for (const entry of record.entries) {
      const key = `${entry.kind} ${entry.algorithm}`;
      if (!this.tierOf.has(key)) continue; // no longer watched
      pruneBuckets(entry, t);
      this.entries.set(key, entry);
    }
  }
}
