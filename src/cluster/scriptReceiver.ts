import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../log.js';
import { replicaPathProblem } from './scriptPath.js';
import { isoTime } from '../time.js';

/** A copy this node will not write or remove; `status` is the HTTP answer (4xx). */
export class ReplicaRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ReplicaUpload {
  path: string;
  /** Permission bits of the original; setuid/setgid/sticky are dropped. */
  mode: number;
  uid: number;
  gid: number;
  content: Buffer;
}

export interface ScriptReceiverOptions {
  node: string;
  directories: readonly string[];
  maxBytes: number;
  /** Where this node notes the copies it received (one small file per copy), for the expiry sweep. */
  markerDir: string;
  log: Logger;
  /** A copy Rundeck never removed is deleted after this long (default 1 hour). */
  maxAgeMs?: number;
  now?: () => number;
}

interface Marker {
  path: string;
  dev: number;
  ino: number;
  /** With dev/ino: the very file written here (an inode number alone is reused by a later file). */
  ctimeMs: number;
  size: number;
  receivedAt: number;
}

const HOUR_MS = 3_600_000;
const SWEEP_INTERVAL_MS = 5 * 60_000;
/** Refusal reasons remembered for the exit-75 message (bounded: oldest forgotten first). */
const MAX_REMEMBERED = 1000;

const runningAsRoot = () => process.geteuid?.() === 0;

/**
 * The receiving side of dispatch-script replication: writes a peer's copy with the
 * original's owner and mode (temp file + rename in the same directory, never through a
 * symbolic link), removes it on the peer's rm, and deletes copies nobody removed after
 * an hour. Remembers why it refused a copy, for the exit-75 message of a later exec.
 */
export class ScriptReceiver {
  private readonly refusals = new Map<string, { why: string; at: number }>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: ScriptReceiverOptions) {
    this.maxAgeMs = opts.maxAgeMs ?? HOUR_MS;
    this.now = opts.now ?? Date.now;
  }

  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  /** Sweeps once now (copies left by an earlier run), then every few minutes. */
  start(): void {
    const sweep = () => void this.sweep().catch((err: Error) => this.opts.log.warn({ err: err.message }, 'dispatch-script replica sweep failed'));
    sweep();
    this.sweepTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Why this node has no copy of `path`, when it refused one (within the last hour). */
  whyMissing(path: string): string | null {
    const r = this.refusals.get(path);
    return r && this.now() - r.at < this.maxAgeMs ? r.why : null;
  }

  /** The uid a copy must be owned by here: the original's when running as root, else this process's. */
  private ownerFor(uid: number): number {
    return runningAsRoot() ? uid : (process.geteuid?.() ?? uid);
  }

  /** Writes (or confirms) one copy; throws ReplicaRefused with the HTTP status when it will not. */
  async receive(upload: ReplicaUpload): Promise<'written' | 'unchanged'> {
    try {
      const result = await this.write(upload);
      this.refusals.delete(upload.path);
      return result;
    } catch (err) {
      this.noteRefused(upload.path, (err as Error).message);
      throw err;
    }
  }

  private async write(upload: ReplicaUpload): Promise<'written' | 'unchanged'> {
    const { path, content } = upload;
    const problem = replicaPathProblem(path, this.opts.directories);
    if (problem) throw new ReplicaRefused(400, problem);
    if (content.length > this.opts.maxBytes) {
      throw new ReplicaRefused(413, `${content.length} bytes is over leadership.scriptReplication.maxBytes (${this.opts.maxBytes})`);
    }
    if (![upload.uid, upload.gid].every((n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32)) throw new ReplicaRefused(400, 'uid and gid must be integers from 0 to 2^32-1');
    const mode = upload.mode & 0o777;
    const owner = this.ownerFor(upload.uid);
    const group = runningAsRoot() ? upload.gid : (process.getegid?.() ?? upload.gid);
    await this.checkDirectory(dirname(path));
    const existing = await this.existing(path, owner);
    if (existing && existing.size === content.length && (existing.mode & 0o777) === mode && existing.gid === group) {
      const same = await readFile(path, { flag: constants.O_RDONLY | constants.O_NOFOLLOW }).then(
        (b) => b.equals(content),
        () => false,
      );
      if (same) {
        await this.mark(path, existing);
        return 'unchanged';
      }
    }
    const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.execgate-replica`);
    const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let renamed = false;
    try {
      try {
        await fh.writeFile(content);
        if (runningAsRoot()) await fh.chown(owner, group);
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
      await rename(temp, path);
      renamed = true;
    } finally {
      if (!renamed) await unlink(temp).catch(() => {});
    }
    await this.mark(path, await lstat(path));
    return 'written';
  }

  /** The directory itself, not a symbolic link to one (the copy lands where its name says). */
  private async checkDirectory(dir: string): Promise<void> {
    const st = await lstat(dir).catch(() => null);
    if (!st?.isDirectory()) throw new ReplicaRefused(409, `${dir} is not a directory on this node (or is a symbolic link)`);
  }

  /** What is at the path now: nothing, or a regular file of the same owner (anything else is refused). */
  private async existing(path: string, owner: number): Promise<Stats | null> {
    let st: Stats;
    try {
      st = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    if (st.isSymbolicLink()) throw new ReplicaRefused(409, `${path} is a symbolic link on this node; not replacing it`);
    if (!st.isFile()) throw new ReplicaRefused(409, `${path} exists on this node and is not a regular file; not replacing it`);
    if (st.uid !== owner) throw new ReplicaRefused(409, `${path} exists on this node owned by uid ${st.uid}, not ${owner}; not replacing another account's file`);
    return st;
  }

  /** Rundeck's cleanup on a peer: removes the file when `uid` owns it. True when a file was removed. */
  async remove(path: string, uid: number): Promise<boolean> {
    const problem = replicaPathProblem(path, this.opts.directories);
    if (problem) throw new ReplicaRefused(400, problem);
    await unlink(this.markerPath(path)).catch(() => {});
    this.refusals.delete(path);
    const st = await this.existing(path, this.ownerFor(uid));
    if (!st) return false;
    try {
      await unlink(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Deletes copies older than maxAgeMs that Rundeck never removed (only the very file this node wrote). */
  async sweep(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.opts.markerDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const markerFile = join(this.opts.markerDir, name);
      const marker = await readFile(markerFile, 'utf8').then(
        (t) => JSON.parse(t) as Marker,
        () => null,
      );
      if (marker && this.now() - marker.receivedAt < this.maxAgeMs) continue;
      if (marker && replicaPathProblem(marker.path, this.opts.directories) === null) {
        const st = await lstat(marker.path).catch(() => null);
        if (st?.isFile() && st.dev === marker.dev && st.ino === marker.ino && st.ctimeMs === marker.ctimeMs && st.size === marker.size) {
          await unlink(marker.path).catch(() => {});
          removed++;
          this.opts.log.info({ path: marker.path, receivedAt: isoTime(marker.receivedAt) }, 'removed a dispatch-script copy Rundeck never removed (older than an hour)');
        }
      }
      await unlink(markerFile).catch(() => {});
    }
    return removed;
  }

  private markerPath(path: string): string {
    return join(this.opts.markerDir, `${createHash('sha256').update(path).digest('hex').slice(0, 32)}.json`);
  }

  private async mark(path: string, st: Stats): Promise<void> {
    await mkdir(this.opts.markerDir, { recursive: true, mode: 0o700 });
    const marker: Marker = { path, dev: st.dev, ino: st.ino, ctimeMs: st.ctimeMs, size: st.size, receivedAt: this.now() };
    await writeFile(this.markerPath(path), JSON.stringify(marker), { mode: 0o600 });
  }

  /** Remembers why a copy of `path` was not written here, for the exit-75 message. */
  noteRefused(path: string, why: string): void {
    this.refusals.delete(path);
    this.refusals.set(path, { why, at: this.now() });
    if (this.refusals.size > MAX_REMEMBERED) this.refusals.delete(this.refusals.keys().next().value!);
  }
}
