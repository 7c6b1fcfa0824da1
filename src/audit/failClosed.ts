import { isoTime } from '../time.js';

export interface AuditOpsLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The audit log fails closed: while writes fail (ENOSPC, EIO, ...) the gateway refuses
 * new commands, the lines that could not be written are kept in memory (up to
 * maxPendingBytes; more are counted as dropped) and a probe retries until a write works.
 */
export class FailClosedState {
  /** The most recent write failure; null while writes succeed. */
  error: Error | null = null;
  /** When writes began to fail (ms since the epoch). */
  since: number | null = null;
  /** Lines kept beyond maxPendingBytes: counted, not kept. */
  dropped = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private probe: NodeJS.Timeout | null = null;

  constructor(
    private readonly path: string,
    private readonly maxPendingBytes: number,
    private readonly log?: AuditOpsLog,
  ) {}

  /** Null while writes succeed; otherwise why the log cannot be written, in words, with what to do. */
  refusal(): string | null {
    const err = this.error;
    if (!err) return null;
    const code = (err as NodeJS.ErrnoException).code;
    return `the audit log ${this.path} cannot be written (${code ? `${code}: ` : ''}${err.message.replace(/^[A-Z]+: /, '')}); commands are refused until it can be (free space on its file system, or fix audit.path)`;
  }

  /** The kept lines, to be written first by the next write. */
  keptText(): string {
    return this.pending.join('');
  }

  /** A write failed: keeps its line (unless empty) and remembers the error; the first failure is logged. */
  failed(err: Error, line: string): void {
    if (line) {
      const bytes = Buffer.byteLength(line);
      if (this.pendingBytes + bytes <= this.maxPendingBytes) {
        this.pending.push(line);
        this.pendingBytes += bytes;
      } else {
        this.dropped++;
      }
    }
    if (this.error === null) {
      this.since = Date.now();
      this.log?.error({ path: this.path, err: err.message }, 'audit log write failed: refusing new commands until it can be written');
    }
    this.error = err;
  }

  /** A write (with the kept lines) succeeded: commands are accepted again. */
  succeeded(): void {
    if (this.error !== null) {
      this.log?.info({ path: this.path, kept: this.pending.length, dropped: this.dropped, failedSince: isoTime(this.since ?? 0) }, 'audit log writable again: commands are accepted');
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.dropped = 0;
    this.error = null;
    this.since = null;
    this.stopProbe();
  }

  /** While writes fail, calls retry every everyMs. */
  startProbe(retry: () => void, everyMs: number): void {
    if (this.probe) return;
    this.probe = setInterval(() => {
      if (this.error === null) return this.stopProbe();
      retry();
    }, everyMs);
    this.probe.unref();
  }

  stopProbe(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
  }
}
