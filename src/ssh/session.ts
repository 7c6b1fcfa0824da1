import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Session, ServerChannel } from 'ssh2';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { RunAsPolicy } from '../exec/runAs.js';
import type { AuditLog, AuditRecord } from '../audit/auditLog.js';
import type { Leadership } from '../leadership/types.js';
import type { CommandRegistry } from '../exec/registry.js';
import type { Metrics } from '../metrics.js';
import type { KeyedCounter } from './limits.js';
import type { RunOnceCoordinator } from '../runonce/coordinator.js';
import { admitWaiting, EXIT_TEMPFAIL } from '../leadership/gate.js';
import { dispatchScriptMessage, dispatchScriptTransfer, missingDispatchScript } from '../exec/dispatchScript.js';
import { buildEnvironment } from '../exec/environment.js';
import { EXIT_CANNOT_RUN, RunningCommand, spawnFailedOutcome, type CommandHandle, type CommandOutcome } from '../exec/runner.js';
import type { SpawnTurns } from '../exec/spawnTurns.js';
import { planLaunch } from '../exec/launch.js';
import { PtyCommand, type PtySize } from '../exec/ptyRunner.js';
import { channelIsOpen, endChannel, refuseOnChannel } from './channelEnd.js';
import type { AuthenticatedIdentity } from './auth.js';
import type { ScriptReplicaPort } from '../cluster/scriptReplica.js';
import { ScpAckGate } from '../cluster/scpAckGate.js';

/** Everything a session needs from the gateway, passed in (no imports of cli/http). */
export interface ExecutionServices {
  node: string;
  config: Config;
  log: Logger;
  runAs: RunAsPolicy;
  audit: AuditLog;
  leadership: Leadership;
  registry: CommandRegistry;
  metrics: Metrics;
  envAllowed: (name: string) => boolean;
  /** Concurrent commands, total and per SSH user (limits.maxCommands*). */
  commandSlots: KeyedCounter;
  /** Set on run-once nodes: they use claims instead of the leader gate. */
  runOnce: RunOnceCoordinator | null;
  /** How long a standby waits for the lead before refusing (0: refuse at once). */
  gateWaitMs: number;
  /** Cluster nodes: Rundeck's script uploads and cleanups reach the other nodes too. */
  scriptReplica?: ScriptReplicaPort;
  /** One command start per event-loop turn (absent: no pacing). */
  spawnTurns?: SpawnTurns;
}

export interface ConnectionInfo {
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
  identity: AuthenticatedIdentity;
  /** Tells the connection when it has running commands (the idle timeout skips those). */
  activity: { commandDecided(): void; commandStarted(): void; commandEnded(): void };
}

type Kind = 'exec' | 'shell' | 'sftp';

const iso = (ms: number) => new Date(ms).toISOString();

/** An error for the client's terminal: one line, control bytes escaped, at most 300 characters. */
const oneLine = (text: string) => {
  const escaped = text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > 300 ? `${escaped.slice(0, 297)}...` : escaped;
};

/** One SSH session channel: collects env and pty, runs one command, reports its end. */
export class SessionHandler {
  private readonly env = new Map<string, string>();
  private envBytes = 0;
  private envOverflow: string | null = null;
  private rdJobExecId: string | null = null;
  /** Rundeck's identifiers, kept whatever the allow-list says (run-once needs them). */
  private readonly rundeckHints = new Map<string, string>();
  private pty: PtySize | null = null;
  private command: CommandHandle | null = null;
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
    const start = (kind: Kind, requested: string | null, accept: () => ServerChannel, reject?: () => void) => {
      if (this.started) return reject?.();
      this.started = true;
      const channel = accept();
      void this.run(kind, requested, channel).catch(async (err: Error) => {
        // Last resort: whatever threw, the client gets an answer and the channel ends.
        this.services.log.error({ err: err.message, stack: err.stack }, 'session handling failed');
        await refuseOnChannel(channel, `execgate: internal error (${err.message}); not running`, EXIT_CANNOT_RUN).catch(() => {});
      });
    };
    session.on('exec', (accept, reject, info) => start('exec', info.command, accept, reject));
    session.on('shell', (accept, reject) => start('shell', null, accept, reject));
    session.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') return reject?.();
      start('sftp', null, accept, reject);
    });
  }

  private onEnv(name: string, value: string): void {
    if (name === 'RD_JOB_EXECID') this.rdJobExecId = value;
    if (name === 'RD_JOB_EXECID' || name === 'RD_NODE_NAME' || name === 'RD_NODE_HOSTNAME') this.rundeckHints.set(name, value);
    if (!this.services.envAllowed(name)) return;
    const { maxEnvVars, maxEnvBytes } = this.services.config.limits;
    const size = name.length + value.length;
    if (this.env.size >= maxEnvVars || this.envBytes + size > maxEnvBytes) {
      this.envOverflow = `execgate: more than limits.maxEnvVars (${maxEnvVars}) variables or limits.maxEnvBytes (${maxEnvBytes}) bytes of environment; not running`;
      return;
    }
    this.env.set(name, value);
    this.envBytes += size;
  }

  private clientLabel(): string {
    return `${this.conn.clientAddress}:${this.conn.clientPort}`;
  }

  /** The program to start as the account (before any user switch), and what the client asked for under a forced command. */
  private program(kind: Kind, requested: string | null): { argv: string[]; forcedFrom: string | null } {
    const { config } = this.services;
    const { account } = this.conn.identity.runAs;
    const forced = this.conn.identity.key.parsedOptions.command;
    let argv: string[];
    if (forced !== null) argv = [config.exec.shell, '-c', forced];
    else if (kind === 'exec') argv = [config.exec.shell, '-c', requested ?? ''];
    else if (kind === 'shell') argv = [account.shell, '-l'];
    else argv = [config.exec.sftpServer];
    return { argv, forcedFrom: forced !== null ? requested ?? '' : null };
  }

  /** The command's whole environment: execgate's own, the client's allow-listed, the key's. */
  private environment(execId: string, token: bigint | null, forcedFrom: string | null): Record<string, string> {
    const { services, conn } = this;
    const env = buildEnvironment(conn.identity.runAs.account, services.config.exec.path, this.env, {
      node: services.node,
      fencingToken: token,
      execId,
      clientAddress: conn.clientAddress,
      clientPort: conn.clientPort,
      serverAddress: conn.serverAddress,
      serverPort: conn.serverPort,
    });
    for (const [name, value] of conn.identity.key.parsedOptions.environment) env[name] = value;
    if (forcedFrom !== null) env.SSH_ORIGINAL_COMMAND = forcedFrom;
    return env;
  }

  private async run(kind: Kind, requested: string | null, channel: ServerChannel): Promise<void> {
    const { services, conn } = this;
    const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
    channel.on('error', (err: Error) => services.log.debug({ err: err.message }, 'channel error'));
    channel.stderr.on('error', (err: Error) => services.log.debug({ err: err.message }, 'channel stderr error'));
    const commandLine = kind === 'exec' ? requested ?? '' : `(${kind})`;
    const user = conn.identity.username;

    const execId = randomUUID();
    const startedAt = Date.now();
    const refuse = async (reason: string, message: string) => {
      services.log.warn({ execId, reason, user, client: this.clientLabel() }, message);
      services.metrics.commandsRefused.inc({ reason });
      services.metrics.commands.inc({ result: 'refused' });
      await this.writeAudit(execId, commandLine, null, {
        result: `refused:${reason}`, status: EXIT_TEMPFAIL, exitCode: null, signal: null, killReason: null,
        error: message, pid: null, startedAt, endedAt: Date.now(), stdoutBytes: 0, stderrBytes: 0, leftoversKilled: 0,
      }).catch((err: Error) => services.log.error({ execId, err: err.message }, 'audit write failed'));
      await refuseOnChannel(channel, message, EXIT_TEMPFAIL);
    };

    const { config } = services;
    if (this.envOverflow) return refuse('env-limit', this.envOverflow);
    const maxBytes = config.limits.maxCommandBytes;
    if (Buffer.byteLength(commandLine) > maxBytes) {
      return refuse('command-too-long', `execgate: command is ${Buffer.byteLength(commandLine)} bytes, over limits.maxCommandBytes (${maxBytes}); not running`);
    }
    // Wait for this command's turn first and ask the gate after it: the start then follows its admission in the same turn.
    await services.spawnTurns?.next();
    let decision: { token: bigint | null };
    let finishClaim: ((status: number) => Promise<void>) | null = null;
    if (services.runOnce) {
      if (kind === 'shell') {
        return refuse('run-once-shell', 'execgate: run-once cannot deduplicate a shell session (sshj sudo/always-set-pty); use exec for this node; not running');
      }
      let gone = false;
      void closed.then(() => (gone = true));
      const ro = kind === 'sftp' ? ({ action: 'run-local' } as const) : await services.runOnce.decide(commandLine, this.rundeckHints, () => gone);
      conn.activity.commandDecided();
      if (ro.action === 'refuse') return refuse(ro.reason, ro.message);
      if (ro.action === 'answer') return this.answerForWinner(channel, execId, commandLine, startedAt, ro);
      decision = { token: ro.action === 'run-claimed' ? ro.token : null };
      if (ro.action === 'run-claimed') finishClaim = ro.finish;
    } else {
      const gate = await admitWaiting(services.node, services.leadership, services.gateWaitMs);
      conn.activity.commandDecided();
      if (!gate.admitted) return refuse(gate.reason, gate.message);
      decision = gate;
    }
    // From here on the run-once claim (if any) has one owner: it is finished on every path.
    let finalStatus = EXIT_TEMPFAIL;
    try {
      // A script step whose upload went to another node before a failover: a clear failure, never a wrong run.
      const missingScript = kind === 'exec' && conn.identity.key.parsedOptions.command === null ? missingDispatchScript(commandLine) : null;
      if (missingScript) {
        return await refuse('dispatch-script-missing', dispatchScriptMessage(services.node, missingScript, services.scriptReplica?.whyMissing(missingScript) ?? null));
      }
      const auditProblem = services.audit.refusal();
      if (auditProblem) return await refuse('audit-unwritable', `execgate: ${auditProblem}; not running`);
      const slot = services.commandSlots.tryAcquire(user);
      if (!slot.ok) {
        return await (slot.limit === 'total'
          ? refuse('max-commands', `execgate: ${config.limits.maxCommands} commands are running on ${services.node} (limits.maxCommands); not running`)
          : refuse('max-commands-per-user', `execgate: user ${user} already runs ${config.limits.maxCommandsPerUser} commands (limits.maxCommandsPerUser); not running`));
      }
      // The slot has one owner too: whatever happens from here on, it is given back.
      try {
        finalStatus = EXIT_CANNOT_RUN;
        finalStatus = (await this.execute(kind, requested, channel, closed, execId, commandLine, decision.token)).status;
      } finally {
        slot.release();
      }
    } finally {
      if (finishClaim) await finishClaim(finalStatus);
    }
  }

  /**
   * Starts the command and waits for its end. Every path ends the channel with an
   * exit status and writes the audit; the registry entry lives exactly as long as the
   * process can.
   */
  private async execute(
    kind: Kind,
    requested: string | null,
    channel: ServerChannel,
    closed: Promise<void>,
    execId: string,
    commandLine: string,
    token: bigint | null,
  ): Promise<CommandOutcome> {
    const { services, conn } = this;
    const { config } = services;
    const { account } = conn.identity.runAs;
    const startedAt = Date.now();
    let command: CommandHandle;
    let upload: ScpAckGate | null = null;
    try {
      const program = this.program(kind, requested);
      const env = this.environment(execId, token, program.forcedFrom);
      const launch = planLaunch(program.argv, env, conn.identity.runAs.switchUser ? account : null);
      let cwd = account.home;
      if (!existsSync(cwd)) {
        channel.stderr.write(`execgate: could not chdir to home directory ${cwd}: no such directory\n`);
        cwd = '/';
      }
      const spec = {
        file: launch.file,
        args: launch.args,
        env: launch.env,
        cwd,
        killGraceMs: config.exec.killGraceSeconds * 1000,
        closeGraceMs: config.exec.closeGraceMs,
        onOutput: (stream: 'stdout' | 'stderr', bytes: number) => services.metrics.outputBytes.inc({ stream }, bytes),
      };
      upload = this.dispatchUploadGate(kind, requested, channel);
      command = this.pty
        ? new PtyCommand(spec, this.pty, { stdin: channel, stdout: channel })
        : new RunningCommand(spec, { stdin: channel, stdout: upload?.writable ?? channel, stderr: channel.stderr });
      if (upload) channel.on('data', upload.observeClient); // after the command's own pipe is attached
    } catch (err) {
      command = { pid: null, cgroupPath: null, done: Promise.resolve(spawnFailedOutcome((err as Error).message, startedAt)), signal: () => false, terminate: () => null, clientGone: () => {} };
    }
    this.command = command;
    const tokenText = token === null ? null : token.toString();
    let outcome: CommandOutcome | undefined;
    services.registry.add({ execId, user: conn.identity.username, command: commandLine, client: this.clientLabel(), startedAt, pid: command.pid, token: tokenText, server: conn.serverAddress }, command);
    services.metrics.commandsRunning.inc();
    conn.activity.commandStarted();
    try {
      if (command.pid !== null) {
        services.log.info(
          { execId, kind, pid: command.pid, user: conn.identity.username, account: account.name, pty: this.pty !== null, client: this.clientLabel(), rdJobExecId: this.rdJobExecId },
          'command started',
        );
        this.writeStart(execId, commandLine, token, startedAt, command);
        let clientGone = false;
        void closed.then(() => {
          clientGone = true;
          command.clientGone();
        });
        outcome = await command.done;
        if (clientGone) return outcome;
      } else {
        outcome = await command.done;
      }
    } catch (err) {
      // Nothing below should throw; if it does, the process must not outlive its entry.
      await command.terminate('gateway error', true);
      outcome = { ...spawnFailedOutcome((err as Error).message, startedAt), pid: command.pid };
    } finally {
      const ended = outcome ?? spawnFailedOutcome('the command ended without an outcome', startedAt);
      services.registry.finish(execId, ended);
      services.metrics.commandsRunning.dec();
      conn.activity.commandEnded();
      await this.finishCommand(execId, commandLine, token, ended);
    }
    await upload?.settled(); // a held scp acknowledgement goes out before the exit status
    // Rundeck's chmod and cleanup reach the peers before the client hears they succeeded.
    if (outcome.result === 'completed' && outcome.status === 0) await this.followDispatchScriptChange(commandLine);
    if (outcome.result === 'spawn-failed') await refuseOnChannel(channel, `execgate: cannot run the command: ${oneLine(outcome.error ?? 'unknown error')}`, outcome.status);
    else await endChannel(channel, outcome.status, closed);
    return outcome;
  }

  /**
   * Rundeck's upload of a dispatch script (`scp -t <script>`): the sink's last acknowledgement,
   * which the client takes as "uploaded" (JSch hangs up right after it), waits for the peer copies.
   */
  private dispatchUploadGate(kind: Kind, requested: string | null, channel: ServerChannel): ScpAckGate | null {
    const replica = this.services.scriptReplica;
    if (!replica || kind !== 'exec' || this.pty || this.conn.identity.key.parsedOptions.command !== null) return null;
    const transfer = dispatchScriptTransfer(requested ?? '');
    if (transfer?.op !== 'upload') return null;
    const { uid } = this.conn.identity.runAs.account;
    return new ScpAckGate(channel, () => replica.afterUpload(transfer.path, uid));
  }

  /** After Rundeck's `chmod +x` or `rm -f` of its script succeeded here: the same on the other nodes. */
  private async followDispatchScriptChange(commandLine: string): Promise<void> {
    const replica = this.services.scriptReplica;
    if (!replica || this.conn.identity.key.parsedOptions.command !== null) return;
    const transfer = dispatchScriptTransfer(commandLine);
    const { uid } = this.conn.identity.runAs.account;
    if (transfer?.op === 'remove') await replica.afterRemove(transfer.path, uid);
    else if (transfer?.op === 'mode') await replica.afterUpload(transfer.path, uid); // the copies take the new mode
  }

  /** Counts, logs and audits a command's end (the audit is written even when the client has vanished). */
  private async finishCommand(execId: string, commandLine: string, token: bigint | null, outcome: CommandOutcome): Promise<void> {
    const { services } = this;
    services.metrics.commands.inc({ result: outcome.result.replace('-', '_') });
    services.metrics.commandDuration.observe((outcome.endedAt - outcome.startedAt) / 1000);
    services.log.info(
      { execId, result: outcome.result, status: outcome.status, killReason: outcome.killReason, leftoversKilled: outcome.leftoversKilled, ms: outcome.endedAt - outcome.startedAt, ...(outcome.error ? { err: outcome.error } : {}) },
      'command finished',
    );
    await this.writeAudit(execId, commandLine, token, outcome).catch((err: Error) =>
      services.log.error({ execId, err: err.message }, 'audit write failed'),
    );
  }

  /** A run-once loser: one line naming the winner, and the winner's exit status. */
  private async answerForWinner(
    channel: ServerChannel,
    execId: string,
    commandLine: string,
    startedAt: number,
    answer: { status: number; line: string; outcome: string },
  ): Promise<void> {
    const { services } = this;
    services.log.info({ execId, outcome: answer.outcome, status: answer.status }, answer.line);
    services.metrics.commands.inc({ result: `runonce_${answer.outcome}` });
    await this.writeAudit(execId, commandLine, null, {
      result: `runonce:${answer.outcome}`, status: answer.status, exitCode: null, signal: null, killReason: null,
      error: null, pid: null, startedAt, endedAt: Date.now(), stdoutBytes: 0, stderrBytes: 0, leftoversKilled: 0,
    }).catch((err: Error) => services.log.error({ execId, err: err.message }, 'audit write failed'));
    if (channelIsOpen(channel)) channel.write(answer.line + '\n');
    await endChannel(channel, answer.status);
  }

  /** Who ran what: the fields the start and end records share. */
  private auditIdentity(execId: string, commandLine: string, token: bigint | null) {
    const { username, keyFingerprint, runAs } = this.conn.identity;
    return {
      execId,
      user: username,
      account: runAs.account.name,
      uid: runAs.account.uid,
      keyFingerprint,
      client: this.clientLabel(),
      command: commandLine,
      rdJobExecId: this.rdJobExecId,
      token: token === null ? null : token.toString(),
    };
  }

  private writeAudit(
    execId: string,
    commandLine: string,
    token: bigint | null,
    outcome: Omit<CommandOutcome, 'result'> & { result: string },
  ): Promise<void> {
    return this.services.audit.end({
      ...this.auditIdentity(execId, commandLine, token),
      start: iso(outcome.startedAt),
      end: iso(outcome.endedAt),
      durationMs: outcome.endedAt - outcome.startedAt,
      result: outcome.result,
      exitStatus: outcome.status,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      killReason: outcome.killReason,
      leftoverKilled: outcome.leftoversKilled,
      bytesOut: { stdout: outcome.stdoutBytes, stderr: outcome.stderrBytes },
      ...(outcome.error ? { error: outcome.error } : {}),
    });
  }

  /** The start record: a gateway killed mid-command still leaves a trace of what ran. */
  private writeStart(execId: string, commandLine: string, token: bigint | null, startedAt: number, command: CommandHandle): void {
    this.services.audit
      .start({
        ...this.auditIdentity(execId, commandLine, token),
        start: iso(startedAt),
        pid: command.pid,
        cgroup: command.cgroupPath,
      })
      .catch((err: Error) => {
        // Fail closed: nothing runs whose start is not on record.
        this.services.log.error({ execId, err: err.message }, 'audit start record could not be written; killing the command');
        void command.terminate(`the audit start record could not be written (${err.message})`);
      });
  }
}
