import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Session, ServerChannel } from 'ssh2';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Account } from '../exec/account.js';
import type { AuditLog, AuditRecord } from '../audit/auditLog.js';
import type { Leadership } from '../leadership/types.js';
import type { CommandRegistry } from '../exec/registry.js';
import type { Metrics } from '../metrics.js';
import { admit, EXIT_TEMPFAIL } from '../leadership/gate.js';
import { buildEnvironment } from '../exec/environment.js';
import { RunningCommand, type CommandOutcome } from '../exec/runner.js';
import { endChannel, refuseOnChannel } from './channelEnd.js';
import type { AuthenticatedIdentity } from './auth.js';

/** Everything a session needs from the gateway, passed in (no imports of cli/http). */
export interface ExecutionServices {
  node: string;
  config: Config;
  log: Logger;
  account: Account;
  switchUser: boolean;
  audit: AuditLog;
  leadership: Leadership;
  registry: CommandRegistry;
  metrics: Metrics;
  envAllowed: (name: string) => boolean;
}

export interface ConnectionInfo {
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
  identity: AuthenticatedIdentity;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One SSH session channel: collects env and pty, runs one command, reports its end. */
export class SessionHandler {
  private readonly env = new Map<string, string>();
  private envBytes = 0;
  private rdJobExecId: string | null = null;
  private command: RunningCommand | null = null;
  private started = false;

  constructor(
    session: Session,
    private readonly services: ExecutionServices,
    private readonly conn: ConnectionInfo,
  ) {
    session.on('env', (accept, _reject, info) => {
      this.onEnv(info.key, info.val);
      accept?.(); // always answer success: JSch aborts on a failure reply
    });
    session.on('pty', (accept) => accept?.());
    session.on('window-change', (accept) => accept?.());
    session.on('signal', (accept, _reject, info) => {
      const delivered = this.command?.signal(info.name) ?? false;
      this.services.log.info({ signal: info.name, delivered }, 'signal request');
      accept?.();
    });
    session.on('exec', (accept, reject, info) => {
      if (this.started) return reject?.();
      this.started = true;
      const channel = accept();
      void this.runExec(channel, info.command).catch((err: Error) =>
        this.services.log.error({ err: err.message, stack: err.stack }, 'exec handling failed'),
      );
    });
  }

  private onEnv(name: string, value: string): void {
    if (name === 'RD_JOB_EXECID') this.rdJobExecId = value;
    const { maxEnvVars, maxEnvBytes } = this.services.config.limits;
    const size = name.length + value.length;
    if (!this.services.envAllowed(name)) return;
    if (this.env.size >= maxEnvVars || this.envBytes + size > maxEnvBytes) {
      this.services.log.warn({ name, maxEnvVars, maxEnvBytes }, 'env variable dropped: limits.maxEnvVars/maxEnvBytes reached');
      return;
    }
    this.env.set(name, value);
    this.envBytes += size;
  }

  private clientLabel(): string {
    return `${this.conn.clientAddress}:${this.conn.clientPort}`;
  }

  private async runExec(channel: ServerChannel, commandLine: string): Promise<void> {
    const { services, conn } = this;
    const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
    channel.on('error', (err: Error) => services.log.debug({ err: err.message }, 'channel error'));
    channel.stderr.on('error', (err: Error) => services.log.debug({ err: err.message }, 'channel stderr error'));

    const execId = randomUUID();
    const startedAt = Date.now();
    const refuse = async (reason: string, message: string, token: bigint | null) => {
      services.log.warn({ execId, reason, client: this.clientLabel() }, message);
      services.metrics.commandsRefused.inc({ reason });
      services.metrics.commands.inc({ result: 'refused' });
      await this.writeAudit(execId, commandLine, token, {
        result: `refused:${reason}`, status: EXIT_TEMPFAIL, exitCode: null, signal: null, killReason: null,
        error: message, pid: null, startedAt, endedAt: Date.now(), stdoutBytes: 0, stderrBytes: 0,
      });
      await refuseOnChannel(channel, message, EXIT_TEMPFAIL);
    };

    const maxBytes = services.config.limits.maxCommandBytes;
    if (Buffer.byteLength(commandLine) > maxBytes) {
      return refuse('command-too-long', `execgate: command is ${Buffer.byteLength(commandLine)} bytes, over limits.maxCommandBytes (${maxBytes}); not running`, null);
    }
    const decision = admit(services.node, services.leadership);
    if (!decision.admitted) return refuse(decision.reason, decision.message, null);

    const { account, config } = services;
    const env = buildEnvironment(account, config.exec.path, this.env, {
      node: services.node,
      fencingToken: decision.token,
      execId,
      clientAddress: conn.clientAddress,
      clientPort: conn.clientPort,
      serverAddress: conn.serverAddress,
      serverPort: conn.serverPort,
    });
    let cwd = account.home;
    if (!existsSync(cwd)) {
      channel.stderr.write(`execgate: could not chdir to home directory ${cwd}: no such directory\n`);
      cwd = '/';
    }
    const shellArgs = ['-c', commandLine];
    const [file, args] = services.switchUser
      ? ['setpriv', [`--reuid=${account.uid}`, `--regid=${account.gid}`, '--init-groups', '--', config.exec.shell, ...shellArgs]]
      : [config.exec.shell, shellArgs];

    const command = new RunningCommand(
      {
        file,
        args,
        env,
        cwd,
        killGraceMs: config.exec.killGraceSeconds * 1000,
        closeGraceMs: config.exec.closeGraceMs,
        onOutput: (stream, bytes) => services.metrics.outputBytes.inc({ stream }, bytes),
      },
      { stdin: channel, stdout: channel, stderr: channel.stderr },
    );
    this.command = command;
    services.metrics.commandsRunning.inc();
    const token = decision.token === null ? null : decision.token.toString();
    services.registry.add(
      { execId, user: conn.identity.username, command: commandLine, client: this.clientLabel(), startedAt, pid: command.pid, token },
      command,
    );
    services.log.info({ execId, pid: command.pid, user: conn.identity.username, client: this.clientLabel(), rdJobExecId: this.rdJobExecId }, 'command started');

    let clientGone = false;
    void closed.then(() => {
      clientGone = true;
      command.clientGone();
    });

    const outcome = await command.done;
    services.registry.finish(execId, outcome);
    services.metrics.commandsRunning.dec();
    services.metrics.commands.inc({ result: outcome.result.replace('-', '_') });
    services.metrics.commandDuration.observe((outcome.endedAt - outcome.startedAt) / 1000);
    services.log.info(
      { execId, result: outcome.result, status: outcome.status, killReason: outcome.killReason, ms: outcome.endedAt - outcome.startedAt },
      'command finished',
    );
    // Audit first: the record must exist even when the client has vanished.
    await this.writeAudit(execId, commandLine, decision.token, outcome).catch((err: Error) =>
      services.log.error({ execId, err: err.message }, 'audit write failed'),
    );
    if (outcome.result === 'spawn-failed') channel.stderr.write(`execgate: could not start command: ${outcome.error}\n`);
    if (!clientGone) await endChannel(channel, outcome.status, closed);
  }

  private writeAudit(
    execId: string,
    commandLine: string,
    token: bigint | null,
    outcome: Omit<CommandOutcome, 'result'> & { result: string },
  ): Promise<void> {
    const record: AuditRecord = {
      time: iso(Date.now()),
      event: 'command',
      node: this.services.node,
      execId,
      user: this.conn.identity.username,
      keyFingerprint: this.conn.identity.keyFingerprint,
      client: this.clientLabel(),
      command: commandLine,
      rdJobExecId: this.rdJobExecId,
      token: token === null ? null : token.toString(),
      start: iso(outcome.startedAt),
      end: iso(outcome.endedAt),
      durationMs: outcome.endedAt - outcome.startedAt,
      result: outcome.result,
      exitStatus: outcome.status,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      killReason: outcome.killReason,
      bytesOut: { stdout: outcome.stdoutBytes, stderr: outcome.stderrBytes },
      ...(outcome.error ? { error: outcome.error } : {}),
    };
    return this.services.audit.write(record);
  }
}
