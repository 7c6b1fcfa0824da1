import type { Session, ServerChannel } from 'ssh2';
import type { AuthenticatedIdentity } from './auth.js';
import type { ClientEnvironment } from '../command/clientEnvironment.js';
import type { CommandChannel, CommandControl, CommandKind, CommandPipeline, ConnectionActivity, PtySize } from '../command/request.js';
import type { Logger } from '../log.js';
import type { ServerServices } from './serverServices.js';
import { endChannel, refuseOnChannel, writeLineAndEnd } from './channelEnd.js';

/** What the SSH server is given: its own settings and services and, for every session channel, the command pipeline. */
export interface SessionServices extends ServerServices {
  /** Admits, plans, runs and records each command (src/command/). */
  pipeline: CommandPipeline;
}

export interface ConnectionInfo {
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
  identity: AuthenticatedIdentity;
  /** Tells the connection when it has running commands (the idle timeout skips those). */
  activity: ConnectionActivity;
}

/** The channel as the pipeline sees it: its streams, how it ends, where window-change and signal requests go. */
function channelPort(channel: ServerChannel, log: Logger, attach: (command: CommandControl) => void): CommandChannel {
  const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  channel.on('error', (err: Error) => log.debug({ err: err.message }, 'channel error'));
  channel.stderr.on('error', (err: Error) => log.debug({ err: err.message }, 'channel stderr error'));
  return {
    stdin: channel,
    stdout: channel,
    stderr: channel.stderr,
    closed,
    refuse: (message, status) => refuseOnChannel(channel, message, status),
    answer: (line, status) => writeLineAndEnd(channel, line, status),
    end: (status) => endChannel(channel, status, closed),
    onInput: (listener) => channel.on('data', listener),
    attach,
  };
}

/** One SSH session channel: collects env and pty, hands one command to the pipeline, forwards signals and window changes to it. */
export class SessionHandler {
  private readonly env: ClientEnvironment;
  private pty: PtySize | null = null;
  private command: CommandControl | null = null;
  private started = false;

  constructor(
    session: Session,
    private readonly services: SessionServices,
    private readonly conn: ConnectionInfo,
  ) {
    this.env = services.pipeline.environment();
    session.on('env', (accept, _reject, info) => {
      this.env.add(info.key, info.val);
      accept?.(); // always answer success: JSch aborts on a failure reply
    });
    session.on('pty', (accept, reject, info) => {
      if (!conn.identity.key.parsedOptions.pty) return reject?.(); // no-pty / restrict
      this.pty = { term: info.term, cols: info.cols, rows: info.rows };
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (this.pty) this.pty = { ...this.pty, cols: info.cols, rows: info.rows };
      this.command?.resize?.(info.cols, info.rows);
      accept?.();
    });
    session.on('signal', (accept, _reject, info) => {
      const delivered = this.command?.signal(info.name) ?? false;
      this.services.log.info({ signal: info.name, delivered }, 'signal request');
      accept?.();
    });
    const start = (kind: CommandKind, requested: string | null, accept: () => ServerChannel, reject?: () => void) => {
      if (this.started) return reject?.();
      this.started = true;
      const channel = accept();
      void this.open(kind, requested, channel);
    };
    session.on('exec', (accept, reject, info) => start('exec', info.command, accept, reject));
    session.on('shell', (accept, reject) => start('shell', null, accept, reject));
    session.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') return reject?.();
      start('sftp', null, accept, reject);
    });
  }

  private open(kind: CommandKind, requested: string | null, channel: ServerChannel): Promise<void> {
    const { conn } = this;
    const { identity } = conn;
    const port = channelPort(channel, this.services.log, (command) => (this.command = command));
    return this.services.pipeline.open(
      {
        kind,
        requested,
        env: this.env,
        pty: () => this.pty,
        clientAddress: conn.clientAddress,
        clientPort: conn.clientPort,
        serverAddress: conn.serverAddress,
        serverPort: conn.serverPort,
        requester: {
          username: identity.username,
          keyFingerprint: identity.keyFingerprint,
          runAs: identity.runAs,
          forcedCommand: identity.key.parsedOptions.command,
          keyEnvironment: identity.key.parsedOptions.environment,
        },
        activity: conn.activity,
      },
      port,
    );
  }
}
