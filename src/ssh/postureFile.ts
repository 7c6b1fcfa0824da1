import { readFileSync, renameSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeRecord, type PostureRecord } from './postureRecord.js';

export interface PostureLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * Reads the record at `path`. A missing file starts an empty record; a corrupt one is
 * moved aside (".corrupt") and logged. `dirty`: the record in memory should be written
 * even before anything is recorded (the start time survives a restart).
 */
export function readPostureFile(path: string, log: PostureLog): { record: PostureRecord | null; dirty: boolean } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      log.info({ path }, 'algorithm posture: no record yet; starting one');
      return { record: null, dirty: true }; // write the start time, so a restart keeps it
    }
    log.warn({ path, err: (err as Error).message }, `cannot read the algorithm posture record ${path}: ${(err as Error).message}; starting an empty record`);
    return { record: null, dirty: false };
  }
  try {
    return { record: decodeRecord(text), dirty: false };
  } catch (err) {
    const aside = `${path}.corrupt`;
    let moved = false;
    try {
      renameSync(path, aside);
      moved = true;
    } catch {
      // the empty record's first write replaces it
    }
    log.warn(
      { path, err: (err as Error).message },
      `the algorithm posture record ${path} is corrupt (${(err as Error).message}); ${moved ? `moved it to ${aside} and ` : ''}started an empty record: legacy algorithm use is known only from now on`,
    );
    return { record: null, dirty: true };
  }
}

/** Writes `text` to `path` atomically: temporary file, fsync, rename. */
export async function writePostureFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
