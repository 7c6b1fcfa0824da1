import { z } from 'zod';
import type { AlgorithmKind } from './algorithms.js';

/**
 * The algorithm posture record's data: per watched algorithm, handshakes counted in
 * 10-minute buckets over the last 24 h and the most recent client idents, and its
 * file format (algorithm-posture.json, version 1).
 */

export const WINDOW_MS = 24 * 3600 * 1000;
/** Counts are kept per 10 minutes: "in the last 24 h" counts cover 24 h to 24 h 10 min. */
export const BUCKET_MS = 10 * 60 * 1000;
/** Distinct client idents kept per algorithm (the most recent). */
export const MAX_CLIENTS = 5;
/** RFC 4253 allows 255 bytes; longer would only serve someone filling the record. */
const MAX_IDENT_CHARS = 128;

export const KINDS = ['kex', 'host-key', 'cipher', 'mac', 'user-auth'] as const;

export interface PostureEntry {
  kind: AlgorithmKind;
  algorithm: string;
  firstSeen: number;
  lastSeen: number;
  /** Bucket start (ms) -> handshakes. */
  buckets: Map<number, number>;
  clients: Array<{ ident: string; lastSeen: number }>;
}

/** The record as kept: since when, and the algorithms seen. */
export interface PostureRecord {
  since: number;
  entries: PostureEntry[];
}

/** Printable ASCII only, bounded: the ident comes from an unauthenticated peer. */
export function cleanIdent(raw: string): string {
  const text = raw.replace(/[^\x20-\x7e]/g, '?').trim();
  return (text.length > MAX_IDENT_CHARS ? text.slice(0, MAX_IDENT_CHARS) : text) || '(empty)';
}

/** Counts one use at `t` by the client `ident` (already cleaned). */
export function countUse(e: PostureEntry, ident: string, t: number): void {
  e.lastSeen = Math.max(e.lastSeen, t);
  const bucket = t - (t % BUCKET_MS);
  e.buckets.set(bucket, (e.buckets.get(bucket) ?? 0) + 1);
  const i = e.clients.findIndex((c) => c.ident === ident);
  if (i >= 0) e.clients.splice(i, 1);
  e.clients.unshift({ ident, lastSeen: t });
  e.clients.length = Math.min(e.clients.length, MAX_CLIENTS);
  pruneBuckets(e, t);
}

/** Drops the buckets that ended more than 24 h before `t`. */
export function pruneBuckets(e: PostureEntry, t: number): void {
  for (const b of e.buckets.keys()) if (b + BUCKET_MS <= t - WINDOW_MS) e.buckets.delete(b);
}

/** Handshakes in the buckets kept. */
export function handshakeCount(e: PostureEntry): number {
  let count = 0;
  for (const n of e.buckets.values()) count += n;
  return count;
}

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

/** The file's text for `record`. */
export function encodeRecord(record: PostureRecord): string {
  const body = { version: 1, since: record.since, entries: record.entries.map((e) => ({ ...e, buckets: [...e.buckets.entries()] })) };
  return `${JSON.stringify(body)}\n`;
}

/** Reads the file's text; throws an Error naming what is wrong (at most three problems). */
export function decodeRecord(text: string): PostureRecord {
  const result = fileSchema.safeParse(JSON.parse(text));
  if (!result.success)
    throw new Error(
      result.error.issues
        .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
        .slice(0, 3)
        .join('; '),
    );
  return {
    since: result.data.since,
    entries: result.data.entries.map((e) => ({
      kind: e.kind,
      algorithm: e.algorithm,
      firstSeen: e.firstSeen,
      lastSeen: e.lastSeen,
      buckets: new Map(e.buckets),
      clients: e.clients.slice(0, MAX_CLIENTS),
    })),
  };
}
