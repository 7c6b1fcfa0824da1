import { open } from 'node:fs/promises';
import type { AuditStartRecord } from './records.js';

export interface OpenStarts {
  /** Start records with no end record, newest first. */
  open: Map<string, AuditStartRecord>;
  /** Files read (the path, then its logrotate predecessor path.1 when the path held no marker). */
  files: string[];
  bytesRead: number;
  /** A marker bounded the scan (false: every file was read to its beginning). */
  bounded: boolean;
}

const CHUNK = 1024 * 1024;

/** The lines of a file from the last to the first, read backwards in chunks (split on bytes, so UTF-8 stays whole), a chunk's lines at a time. */
async function* linesBackwards(path: string, counter: { bytes: number }): AsyncGenerator<string[]> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    let pos = (await fh.stat()).size;
    let carry: Buffer = Buffer.alloc(0);
    while (pos > 0) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      counter.bytes += len;
      let data = carry.length ? Buffer.concat([buf, carry]) : buf;
      let end = data.length;
      const batch: string[] = [];
      for (let i = data.lastIndexOf(0x0a, end - 1); i >= 0; i = i > 0 ? data.lastIndexOf(0x0a, i - 1) : -1) {
        if (end > i + 1) batch.push(data.toString('utf8', i + 1, end));
        end = i;
      }
      if (batch.length) yield batch;
      carry = data.subarray(0, end);
      data = Buffer.alloc(0);
    }
    if (carry.length) yield [carry.toString('utf8')];
  } finally {
    await fh.close();
  }
}

const EVENT = /^\{"time":"[^"]*","event":"([a-z-]+)"/;
const EXEC_ID = /"execId":"([^"]+)"/;

/**
 * Finds start records without an end record by reading the audit file backwards up
 * to the newest marker (`open` or `stop`): a marker lists every command open at that
 * point, so nothing older is needed. Gateways write a marker at each start, rotation,
 * reopen and clean stop, so the scan reads at most one rotation period of lines. When
 * the file holds no marker (logrotate created it and the gateway died before writing
 * to it), its predecessor path.1 is read as well. Unparsable lines (a torn write) are
 * skipped.
 */
export async function findOpenStarts(path: string): Promise<OpenStarts> {
  const open = new Map<string, AuditStartRecord>();
  const ended = new Set<string>();
  const counter = { bytes: 0 };
  const files: string[] = [];
  const consider = (r: AuditStartRecord) => {
    if (r && typeof r.execId === 'string' && !ended.has(r.execId) && !open.has(r.execId)) open.set(r.execId, r);
  };
  for (const file of [path, `${path}.1`]) {
    files.push(file);
    for await (const batch of linesBackwards(file, counter))
      for (const line of batch) {
        const event = EVENT.exec(line)?.[1];
        if (event === 'end' || event === 'command') {
          // A torn end line (write cut short) does not end anything.
          const id = line.endsWith('}') ? EXEC_ID.exec(line)?.[1] : undefined;
          if (id) ended.add(id);
          continue;
        }
        if (event !== 'start' && event !== 'open' && event !== 'stop') continue;
        let record: unknown;
        try {
          record = JSON.parse(line);
        } catch {
          continue;
        }
        if (event === 'start') {
          consider(record as AuditStartRecord);
        } else {
          const running = (record as { running?: unknown }).running;
          if (Array.isArray(running)) for (const r of running) consider(r as AuditStartRecord);
          return { open, files, bytesRead: counter.bytes, bounded: true };
        }
      }
  }
  return { open, files, bytesRead: counter.bytes, bounded: false };
}
