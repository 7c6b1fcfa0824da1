import { open, stat, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { bootId, processStartTicks } from './procIdentity.js';

/**
 * The audit log: append-only JSON lines (docs/audit.md). A command writes a `start`
 * line when it starts and an `end` line (same execId) when it ends; a command that
 * never started (refused, run-once answer) writes only its `end` line. `open` and
 * `stop` lines are markers: each lists the commands still running at that point, so
 * a restart only reads the file back to the newest marker to find what a killed
 * gateway left behind.
 */

/** Before start/end records: one line per command at its end. Still accepted by write(). */
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

/** Who ran what, where: the fields every start and end record carries. */
export interface AuditCommandIdentity {
  time: string;
  node: string;
  execId: string;
  /** The gateway process that ran it: a restart ends the records of dead gateways. */
  gatewayPid: number;
  /** The SSH user name. */
  user: string;
  /** The local account the command runs as, and its uid. */
  account: string;
  uid: number;
  keyFingerprint: string;
  client: string;
  command: string;
  rdJobExecId: string | null;
  token: string | null;
  start: string;
}

/** A command started: written once its process exists (pid known). */
export interface AuditStartRecord extends AuditCommandIdentity {
  event: 'start';
  pid: number | null;
  /** The command's cgroup v2 directory (absolute path), or null where none was available. */
  cgroup: string | null;
  /** Which boot and which process start (clock ticks, /proc/PID/stat field 22) pid was: never kill a reused pid. */
  bootId: string | null;
  pidStartTicks: number | null;
}

/** A command ended (or never started: refused, run-once answer; or was lost with a killed gateway). */
export interface AuditEndRecord extends AuditCommandIdentity {
  event: 'end';
  end: string;
  durationMs: number;
  /** "completed", "killed", "spawn-failed", "refused:<why>", "runonce:<outcome>", "lost" (its gateway died) */
  result: string;
  /** The SSH exit status sent to the client; null for "lost" (the client got none). */
  exitStatus: number | null;
  exitCode: number | null;
  signal: string | null;
  killReason: string | null;
  /** Processes left in the command's cgroup (or group) after it ended, killed by execgate. */
  leftoverKilled: number;
  /** Null for "lost": the counts died with the gateway. */
  bytesOut: { stdout: number; stderr: number } | null;
  error?: string;
  /** For "lost": what happened, in words. */
  reason?: string;
}

/** A marker: this gateway (re)opened the file or stopped cleanly; `running` lists every command still open at this point. */
export interface AuditMarkerRecord {
  time: string;
  event: 'open' | 'stop';
  node: string;
  gatewayPid: number;
  /** open: "start" (after the restart recovery), "rotated" (the path's inode changed), "reopen" (SIGHUP), "write-recovered" (writes work again). */
  reason: string;
  running: AuditStartRecord[];
  /** write-recovered: when writes began to fail, the error, and lines that could not be kept. */
  failedSince?: string;
  error?: string;
  droppedRecords?: number;
}

/**
 * A drain reached drainTimeoutSeconds with client connections still open here (that came
 * in on the VIP, or relayed to the new leader): they were cut so the VIP could move.
 * A command of such a connection has its own end record where it ran.
 */
export interface AuditCutRecord {
  time: string;
  event: 'cut';
  node: string;
  gatewayPid: number;
  reason: string;
  connections: Array<{ client: string; via: string; forwardedTo: string | null }>;
}

export type AuditLine = AuditRecord | AuditStartRecord | AuditEndRecord | AuditMarkerRecord | AuditCutRecord;

/** What the session fills in; the log adds time, event, node, gatewayPid and the process identity. */
export type AuditStartFields = Omit<AuditStartRecord, 'time' | 'event' | 'node' | 'gatewayPid' | 'bootId' | 'pidStartTicks'>;
export type AuditEndFields = Omit<AuditEndRecord, 'time' | 'event' | 'node' | 'gatewayPid'>;

export interface AuditLogOptions {
  /** The node name written into records. */
  node?: string;
  /** While writes fail, retry every probeMs (the retry also writes the "write-recovered" marker). */
  probeMs?: number;
  /** Lines kept in memory while writes fail, at most this many bytes; more are counted as dropped. */
  maxPendingBytes?: number;
  /** Operational log (reopen, failure, recovery). */
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

const AUDIT_PROBE_MS = 1000;
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Append-only JSON lines, fsynced before a write is reported done; writes are
 * serialised so lines never interleave.
 *
 * Rotation: before each write the path is stat()ed; when its inode changed (logrotate
 * renamed it) or it is gone, the file is reopened (created) and an `open` marker
 * ("rotated") goes first. reopen() does the same on SIGHUP.
 *
 * Failure: a failed write (ENOSPC, EIO, ...) is cut back off the file (ftruncate to the
 * size before it) and kept in memory; refusal() then returns a message and the gateway
 * refuses new commands (exit 75) until a retry succeeds: every write retries, and a
 * probe retries every probeMs; the first success writes the kept lines and a
 * "write-recovered" marker.
 */
export class AuditLog {
  private handle: FileHandle | null = null;
  private dev = -1;
  private ino = -1;
  private queue: Promise<void> = Promise.resolve();
  private lastError: Error | null = null;
  private failedSince: number | null = null;
  private pending: string[] = [];
  private pendingBytes = 0;
  private dropped = 0;
  private needNewline = false;
  private probe: NodeJS.Timeout | null = null;
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
  }

  async open(): Promise<void> {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o750 });
      await this.openFile();
    } catch (err) {
      throw new Error(`cannot open the audit log ${this.path} (audit.path): ${(err as Error).message}`);
    }
  }

  /** The most recent write failure, for health reporting; null when writes succeed. */
  get error(): Error | null {
    return this.lastError;
  }

  /**
   * Null while the audit log is writable; otherwise why not, in words (no "execgate:"
   * prefix): the session refuses the command with exit 75 and this reason, so no
   * command runs unaudited.
   */
  refusal(): string | null {
    const err = this.lastError;
    if (!err) return null;
    const code = (err as NodeJS.ErrnoException).code;
    return `the audit log ${this.path} cannot be written (${code ? `${code}: ` : ''}${err.message.replace(/^[A-Z]+: /, '')}); commands are refused until it can be (free space on its file system, or fix audit.path)`;
  }

  /** The commands this log considers running (start written, end not yet). */
  runningRecords(): AuditStartRecord[] {
    return [...this.running.values()];
  }

  /** Writes a command's start record. Call once its process exists. */
  start(fields: AuditStartFields): Promise<void> {
    const record: AuditStartRecord = {
      time: new Date().toISOString(),
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
    return this.write({ time: new Date().toISOString(), event: 'end', node: this.node, gatewayPid: process.pid, ...fields });
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

  /** Writes a marker line (open/stop) listing `running` (default: this log's running commands). */
  /** Records connections a drain cut at its deadline (see AuditCutRecord). */
  cut(reason: string, connections: AuditCutRecord['connections']): Promise<void> {
    return this.write({ time: new Date().toISOString(), event: 'cut', node: this.node, gatewayPid: process.pid, reason, connections });
  }

  mark(event: 'open' | 'stop', reason: string, running: AuditStartRecord[] = this.runningRecords()): Promise<void> {
    return this.enqueue(this.markerLine(event, reason, running));
  }

  /** Closes and reopens the path (SIGHUP after logrotate); writes an `open` ("reopen") marker. */
  reopen(): Promise<void> {
    return this.serial(async () => {
      await this.handle?.close().catch(() => {});
      this.handle = null;
      await this.append(this.markerLine('open', 'reopen', this.runningRecords()), false);
      this.options.log?.info({ path: this.path, ino: this.ino }, 'audit log reopened');
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
    this.stopProbe();
    await this.queue;
    await this.handle?.close().catch(() => {});
    this.handle = null;
  }

  private markerLine(event: 'open' | 'stop', reason: string, running: AuditStartRecord[]): string {
    const marker: AuditMarkerRecord = { time: new Date().toISOString(), event, node: this.node, gatewayPid: process.pid, reason, running };
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

  private async openFile(): Promise<void> {
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
   * One write: the path's inode checked (reopen + "rotated" marker when it changed),
   * kept lines first, the line, fdatasync. On failure the file is cut back to its size
   * before the write and the line is kept for the next attempt.
   */
  private async append(line: string, keepOnFailure: boolean, durable = true): Promise<void> {
    let text = '';
    let size = -1;
    try {
      let st: { dev: number; ino: number; size: number } | null = null;
      try {
        st = await stat(this.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (!this.handle || !st || st.dev !== this.dev || st.ino !== this.ino) {
        const rotated = this.handle !== null;
        await this.openFile();
        const now = await this.handle!.stat();
        size = now.size;
        if (rotated) {
          this.options.log?.info({ path: this.path, ino: this.ino }, 'audit log path replaced (rotated): reopened');
          text += this.markerLine('open', 'rotated', this.runningRecords());
        }
      } else {
        size = st.size;
      }
      const recovering = this.lastError !== null;
      if (this.needNewline) text = '\n' + text;
      text += this.pending.join('');
      if (recovering) {
        const marker: AuditMarkerRecord = {
          time: new Date().toISOString(),
          event: 'open',
          node: this.node,
          gatewayPid: process.pid,
          reason: 'write-recovered',
          running: this.runningRecords(),
          failedSince: new Date(this.failedSince ?? Date.now()).toISOString(),
          error: this.lastError!.message,
          droppedRecords: this.dropped,
        };
        text += JSON.stringify(marker) + '\n';
      }
      text += line;
      await this.handle!.appendFile(text);
      if (durable || recovering) await this.handle!.datasync();
      if (recovering) {
        this.options.log?.info({ path: this.path, kept: this.pending.length, dropped: this.dropped, failedSince: new Date(this.failedSince ?? 0).toISOString() }, 'audit log writable again: commands are accepted');
      }
      this.pending = [];
      this.pendingBytes = 0;
      this.dropped = 0;
      this.needNewline = false;
      this.lastError = null;
      this.failedSince = null;
      this.stopProbe();
    } catch (err) {
      await this.failed(err as Error, size, line, keepOnFailure);
      throw err;
    } finally {
      if (this.closed) {
        await this.handle?.close().catch(() => {});
        this.handle = null;
      }
    }
  }

  private async failed(err: Error, size: number, line: string, keep: boolean): Promise<void> {
    if (this.handle && size >= 0) {
      // Cut a partial line back off (ENOSPC mid-write); if even that fails, start the next write on a new line.
      try {
        await this.handle.truncate(size);
      } catch {
        this.needNewline = true;
      }
    } else {
      this.needNewline = true;
    }
    if (keep && line) {
      const bytes = Buffer.byteLength(line);
      if (this.pendingBytes + bytes <= (this.options.maxPendingBytes ?? MAX_PENDING_BYTES)) {
        this.pending.push(line);
        this.pendingBytes += bytes;
      } else {
        this.dropped++;
      }
    }
    if (this.lastError === null) {
      this.failedSince = Date.now();
      this.options.log?.error({ path: this.path, err: err.message }, 'audit log write failed: refusing new commands until it can be written');
    }
    this.lastError = err;
    this.startProbe();
  }

  private startProbe(): void {
    if (this.probe || this.closed) return;
    this.probe = setInterval(() => {
      if (this.lastError === null) return this.stopProbe();
      void this.serial(async () => {
        if (this.lastError !== null) await this.append('', false);
      }).catch(() => {});
    }, this.options.probeMs ?? AUDIT_PROBE_MS);
    this.probe.unref();
  }

  private stopProbe(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
  }
}
