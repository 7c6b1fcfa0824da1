import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isoTime } from '../time.js';
import { bootId, processStartTicks } from './procIdentity.js';
import { AuditFile } from './auditFile.js';
import { FailClosedState, type AuditOpsLog } from './failClosed.js';
import type { AuditCutRecord, AuditEndFields, AuditLine, AuditMarkerRecord, AuditStartFields, AuditStartRecord } from './records.js';

export type { AuditCommandIdentity, AuditCutRecord, AuditEndFields, AuditEndRecord, AuditLine, AuditMarkerRecord, AuditRecord, AuditStartFields, AuditStartRecord } from './records.js';

export interface AuditLogOptions {
  /** The node name written into records. */
  node?: string;
  /** While writes fail, retry every probeMs (the retry also writes the "write-recovered" marker). */
  probeMs?: number;
  /** Lines kept in memory while writes fail, at most this many bytes; more are counted as dropped. */
  maxPendingBytes?: number;
  /** Operational log (reopen, failure, recovery). */
  log?: AuditOpsLog;
}

const AUDIT_PROBE_MS = 1000;
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Append-only JSON lines (src/audit/records.ts), fsynced before a write is reported
 * done; writes are serialised so lines never interleave.
 *
 * Rotation (AuditFile): when the path's inode changed (logrotate renamed it) or it is
 * gone, the file is reopened (created) and an `open` marker ("rotated") goes first.
 * reopen() does the same on SIGHUP.
 *
 * Failure (FailClosedState): a failed write (ENOSPC, EIO, ...) is cut back off the file
 * (ftruncate to the size before it) and kept in memory; refusal() then returns a message
 * and the gateway refuses new commands (exit 75) until a retry succeeds: every write
 * retries, and a probe retries every probeMs; the first success writes the kept lines
 * and a "write-recovered" marker.
 */
export class AuditLog {
  private readonly file: AuditFile;
  private readonly failure: FailClosedState;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** Commands with a start line and no end line yet, as the markers list them. */
  private readonly running = new Map<string, AuditStartRecord>();
  private readonly node: string;
  private readonly boot = bootId();

  constructor(
    readonly path: string,
    private readonly options: AuditLogOptions = {},
  ) {
    this.node = options.node ?? '';
    this.file = new AuditFile(path);
    this.failure = new FailClosedState(path, options.maxPendingBytes ?? MAX_PENDING_BYTES, options.log);
  }

  async open(): Promise<void> {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o750 });
      await this.file.open();
    } catch (err) {
      throw new Error(`cannot open the audit log ${this.path} (audit.path): ${(err as Error).message}`, { cause: err });
    }
  }

  /** The most recent write failure, for health reporting; null when writes succeed. */
  get error(): Error | null {
    return this.failure.error;
  }

  /**
   * Null while the audit log is writable; otherwise why not, in words (no "execgate:"
   * prefix): the session refuses the command with exit 75 and this reason, so no
   * command runs unaudited.
   */
  refusal(): string | null {
    return this.failure.refusal();
  }

  /** The commands this log considers running (start written, end not yet). */
  runningRecords(): AuditStartRecord[] {
    return [...this.running.values()];
  }

  /** Writes a command's start record. Call once its process exists. */
  start(fields: AuditStartFields): Promise<void> {
    const record: AuditStartRecord = {
      time: isoTime(),
      event: 'start',
      node: this.node,
      execId: fields.execId,
      gatewayPid: process.pid,
      user: fields.user,
      account: fields.account,
      uid: fields.uid,
      keyFingerprint: fields.keyFingerprint,
      client: fields.client,
      command: fields.command,
      rdJobExecId: fields.rdJobExecId,
      token: fields.token,
      start: fields.start,
      pid: fields.pid,
      cgroup: fields.cgroup,
      bootId: this.boot,
      pidStartTicks: fields.pid === null ? null : processStartTicks(fields.pid),
    };
    return this.write(record);
  }

  /** Writes a command's end record (also for commands that never started). */
  end(fields: AuditEndFields): Promise<void> {
    return this.write({ time: isoTime(), event: 'end', node: this.node, gatewayPid: process.pid, ...fields });
  }

  /** Writes one record (any kind). Rejects when it could not be written now; the line is kept and written on recovery. */
  write(record: AuditLine): Promise<void> {
    if (record.event === 'start') this.running.set(record.execId, record);
    else if (record.event === 'end' || record.event === 'command') this.running.delete(record.execId);
    // A start record must survive the gateway, not the host: the page cache keeps it
    // through a SIGKILL, and a host crash ends its command too. It reaches the disk with
    // the next fsync (at the latest its end record's), which saves one fsync per command.
    return this.enqueue(JSON.stringify(record) + '\n', record.event !== 'start');
  }

  /** Records connections a drain cut at its deadline (see AuditCutRecord). */
  cut(reason: string, connections: AuditCutRecord['connections']): Promise<void> {
    return this.write({ time: isoTime(), event: 'cut', node: this.node, gatewayPid: process.pid, reason, connections });
  }

  /** Writes a marker line (open/stop) listing `running` (default: this log's running commands). */
  mark(event: 'open' | 'stop', reason: string, running: AuditStartRecord[] = this.runningRecords()): Promise<void> {
    return this.enqueue(this.markerLine(event, reason, running));
  }

  /** Closes and reopens the path (SIGHUP after logrotate); writes an `open` ("reopen") marker. */
  reopen(): Promise<void> {
    return this.serial(async () => {
      await this.file.close();
      await this.append(this.markerLine('open', 'reopen', this.runningRecords()), false);
      this.options.log?.info({ path: this.path, ino: this.file.inode }, 'audit log reopened');
    });
  }

  /**
   * Waits (up to waitMs) for running commands to write their end lines, writes a `stop`
   * marker and closes the file. A line written after close() still lands (open, append, close).
   */
  async close(waitMs = 5000): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.mark('stop', this.running.size ? 'stopped with commands still open' : 'clean', this.runningRecords()).catch(() => {});
    this.closed = true;
    this.failure.stopProbe();
    await this.queue;
    await this.file.close();
  }

  private markerLine(event: 'open' | 'stop', reason: string, running: AuditStartRecord[]): string {
    const marker: AuditMarkerRecord = { time: isoTime(), event, node: this.node, gatewayPid: process.pid, reason, running };
    return JSON.stringify(marker) + '\n';
  }

  private serial(task: () => Promise<void>): Promise<void> {
    const done = this.queue.then(task);
    this.queue = done.catch(() => {});
    return done;
  }

  private enqueue(line: string, durable = true): Promise<void> {
    return this.serial(() => this.append(line, true, durable));
  }

  /**
   * One write: the path's inode checked (reopen + "rotated" marker when it changed),
   * kept lines first, the line, fdatasync. On failure the file is cut back to its size
   * before the write and the line is kept for the next attempt.
   */
  private async append(line: string, keepOnFailure: boolean, durable = true): Promise<void> {
    let text = '';
    let size = -1;
    try {
      const current = await this.file.current();
      size = current.size;
      if (current.rotated) {
        this.options.log?.info({ path: this.path, ino: this.file.inode }, 'audit log path replaced (rotated): reopened');
        text += this.markerLine('open', 'rotated', this.runningRecords());
      }
      const recovering = this.failure.error !== null;
      text += this.failure.keptText();
      if (recovering) {
        const marker: AuditMarkerRecord = {
          time: isoTime(),
          event: 'open',
          node: this.node,
          gatewayPid: process.pid,
          reason: 'write-recovered',
          running: this.runningRecords(),
          failedSince: isoTime(this.failure.since ?? Date.now()),
          error: this.failure.error!.message,
          droppedRecords: this.failure.dropped,
        };
        text += JSON.stringify(marker) + '\n';
      }
      text += line;
      await this.file.append(text, durable || recovering);
      this.failure.succeeded();
    } catch (err) {
      await this.file.cutBack(size);
      this.failure.failed(err as Error, keepOnFailure ? line : '');
      if (!this.closed) this.failure.startProbe(() => this.retry(), this.options.probeMs ?? AUDIT_PROBE_MS);
      throw err;
    } finally {
      if (this.closed) await this.file.close();
    }
  }

  /** The probe's retry while writes fail: an empty write, which writes the kept lines and the "write-recovered" marker. */
  private retry(): void {
    void this.serial(async () => {
      if (this.failure.error !== null) await this.append('', false);
    }).catch(() => {});
  }
}
