/**
 * The audit log's records, one JSON line each, appended (docs/audit.md). A command writes a `start`
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
