import type { Readable, Writable } from 'node:stream';
import type { PtySize } from '../exec/ptyRunner.js';
import type { RunAsTarget } from '../account/runAs.js';
import type { ClientEnvironment } from './clientEnvironment.js';

export type { PtySize };

export type CommandKind = 'exec' | 'shell' | 'sftp';

/** Who asks: the authenticated SSH user, the account it runs as, and its key's options. */
export interface Requester {
  username: string;
  keyFingerprint: string;
  runAs: RunAsTarget;
  /** The key's command="..." (a forced command), or null. */
  forcedCommand: string | null;
  /** The key's environment="NAME=value" options. */
  keyEnvironment: ReadonlyArray<readonly [string, string]>;
}

/** Tells the connection when it has running commands (the idle timeout skips those). */
export interface ConnectionActivity {
  commandDecided(): void;
  commandStarted(): void;
  commandEnded(): void;
}

/** One command a session channel asks for, as the SSH layer collected it. */
export interface CommandRequest {
  kind: CommandKind;
  /** The exec request's command line (null for a shell or sftp). */
  requested: string | null;
  /** The client's env requests so far (allow-listed, within the limits, or why not). */
  env: ClientEnvironment;
  /** The pty the client asked for, read when the command starts (a window-change before that counts), or null. */
  pty(): PtySize | null;
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
  requester: Requester;
  activity: ConnectionActivity;
}

/** What channel requests reach while the command runs (signal, window-change). */
export interface CommandControl {
  signal(name: string): boolean;
  resize?(cols: number, rows: number): void;
}

/** The channel side the pipeline writes to: streams, its end, and where the running command is announced. */
export interface CommandChannel {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Settles when the client's channel has closed. */
  readonly closed: Promise<void>;
  /** One line on stderr, then the exit status and the channel's end. */
  refuse(message: string, status: number): Promise<void>;
  /** One line on stdout (a run-once answer), then the exit status and the channel's end. */
  answer(line: string, status: number): Promise<void>;
  /** All output flushed, then the exit status and the channel's end. */
  end(status: number): Promise<void>;
  /** Every chunk the client sends, after the command's own stdin pipe. */
  onInput(listener: (chunk: Buffer) => void): void;
  /** The command now running: signal and window-change requests go to it. */
  attach(command: CommandControl): void;
}

/** The SSH layer's way into the pipeline: one environment collector and one open() per session channel. */
export interface CommandPipeline {
  /** Collects one session's env requests under the gateway's allow-list and limits. */
  environment(): ClientEnvironment;
  /** Admits, runs and records the command; settles once the channel has its answer. Never rejects. */
  open(request: CommandRequest, channel: CommandChannel): Promise<void>;
}

/** The command line audited, logged and limited: the exec request, or "(shell)" / "(sftp)". */
export function commandLineOf(request: Pick<CommandRequest, 'kind' | 'requested'>): string {
  return request.kind === 'exec' ? (request.requested ?? '') : `(${request.kind})`;
}

export function clientLabel(request: Pick<CommandRequest, 'clientAddress' | 'clientPort'>): string {
  return `${request.clientAddress}:${request.clientPort}`;
}
