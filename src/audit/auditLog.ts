import { open, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface AuditRecord {
  time: string;
  event: 'command';
  node: string;
  execId: string;
  user: string;
  keyFingerprint: string;
  client: string;
  command: string;
  rdJobExecId: string | null;
  token: string | null;
  start: string;
  end: string;
  durationMs: number;
  result: string;
  exitStatus: number;
  exitCode: number | null;
  signal: string | null;
  killReason: string | null;
  bytesOut: { stdout: number; stderr: number };
  error?: string;
}

/**
 * Append-only JSON lines, one per command, fsynced before the write is reported
 * done. Writes are serialised so lines never interleave.
 */
export class AuditLog {
  private handle: FileHandle | null = null;
  private queue: Promise<void> = Promise.resolve();
  private lastError: Error | null = null;

  constructor(readonly path: string) {}

  async open(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o750 });
    this.handle = await open(this.path, 'a', 0o640);
  }

  /** The most recent write failure, for health reporting; null when writes succeed. */
  get error(): Error | null {
    return this.lastError;
  }

  write(record: AuditRecord): Promise<void> {
    const line = JSON.stringify(record) + '\n';
    this.queue = this.queue.then(async () => {
      if (!this.handle) throw new Error(`audit log ${this.path} is not open`);
      try {
        await this.handle.appendFile(line);
        await this.handle.datasync();
        this.lastError = null;
      } catch (err) {
        this.lastError = err as Error;
        throw err;
      }
    });
    const done = this.queue;
    this.queue = this.queue.catch(() => {});
    return done;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.handle?.close();
    this.handle = null;
  }
}
