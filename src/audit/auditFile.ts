import { open, stat, type FileHandle } from 'node:fs/promises';

/**
 * The audit file on disk, appended to through one handle. Rotation: before each write
 * the path is stat()ed; when its inode changed (logrotate renamed it) or it is gone,
 * the path is reopened (created). close() then a write reopens it too (SIGHUP).
 */
export class AuditFile {
  private handle: FileHandle | null = null;
  private dev = -1;
  private ino = -1;
  /** A failed write could not be cut back off the file: the next write starts on a new line. */
  private needNewline = false;

  constructor(readonly path: string) {}

  /** The inode of the open file (for the log lines about reopening). */
  get inode(): number {
    return this.ino;
  }

  async open(): Promise<void> {
    const handle = await open(this.path, 'a', 0o640);
    try {
      const st = await handle.stat();
      this.dev = st.dev;
      this.ino = st.ino;
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
    const old = this.handle;
    this.handle = handle;
    this.needNewline = false; // a torn line belongs to the old file
    await old?.close().catch(() => {});
  }

  /**
   * Before a write: reopens the path when nothing is open, its inode changed or it is
   * gone. Returns the file's size (to cut a failed write back to) and whether an open
   * file was replaced (rotated), which the caller marks in the new file.
   */
  async current(): Promise<{ size: number; rotated: boolean }> {
    let st: { dev: number; ino: number; size: number } | null = null;
    try {
      st = await stat(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (this.handle && st && st.dev === this.dev && st.ino === this.ino) return { size: st.size, rotated: false };
    const rotated = this.handle !== null;
    await this.open();
    const now = await this.handle!.stat();
    return { size: now.size, rotated };
  }

  /** Appends text to the file current() checked; fdatasync when sync. */
  async append(text: string, sync: boolean): Promise<void> {
    await this.handle!.appendFile(this.needNewline ? '\n' + text : text);
    if (sync) await this.handle!.datasync();
    this.needNewline = false;
  }

  /**
   * After a failed append: cuts a partial line back off (ENOSPC mid-write) to size
   * (from current(); -1 when unknown); if even that fails, the next write starts on a
   * new line.
   */
  async cutBack(size: number): Promise<void> {
    if (this.handle && size >= 0) {
      try {
        await this.handle.truncate(size);
      } catch {
        this.needNewline = true;
      }
    } else {
      this.needNewline = true;
    }
  }

  async close(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = null;
  }
}
