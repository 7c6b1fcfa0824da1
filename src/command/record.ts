import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AuditEndFields, AuditStartFields } from '../audit/auditLog.js';
import { spawnFailedOutcome, type CommandHandle, type CommandOutcome } from '../exec/runner.js';
import { EXIT_TEMPFAIL } from '../exitCodes.js';
import { isoTime } from '../time.js';
import { clientLabel, commandLineOf, type CommandRequest } from './request.js';

export interface RecordPorts {
  log: Logger;
  metrics: Pick<Metrics, 'commands' | 'commandsRefused' | 'commandDuration'>;
  audit: { start(fields: AuditStartFields): Promise<void>; end(fields: AuditEndFields): Promise<void> };
}

/** An end record's outcome: a command's, or a refusal's or run-once answer's (result "refused:<why>", "runonce:<outcome>"). */
type EndOutcome = Omit<CommandOutcome, 'result'> & { result: string };

/** Nothing ran: no process, no bytes (a refusal, or a run-once answer). */
const nothingRan = (result: string, status: number, error: string | null, startedAt: number): EndOutcome => ({ ...spawnFailedOutcome(error ?? '', startedAt), result, status, error });

/** The metrics, log lines and audit records of one command, from its refusal or start to its end. */
export class CommandRecord {
  readonly commandLine: string;

  constructor(
    private readonly ports: RecordPorts,
    private readonly request: CommandRequest,
    readonly execId: string,
  ) {
    this.commandLine = commandLineOf(request);
  }

  /** A refusal (exit 75): counted, logged, audited; an audit failure is logged, never thrown. */
  async refused(reason: string, message: string, startedAt: number): Promise<void> {
    const { log, metrics } = this.ports;
    log.warn({ execId: this.execId, reason, user: this.request.requester.username, client: clientLabel(this.request) }, message);
    metrics.commandsRefused.inc({ reason });
    metrics.commands.inc({ result: 'refused' });
    await this.writeEnd(null, nothingRan(`refused:${reason}`, EXIT_TEMPFAIL, message, startedAt));
  }

  /** A run-once loser's answer: the winner's exit status. */
  async answered(answer: { status: number; line: string; outcome: string }, startedAt: number): Promise<void> {
    const { log, metrics } = this.ports;
    log.info({ execId: this.execId, outcome: answer.outcome, status: answer.status }, answer.line);
    metrics.commands.inc({ result: `runonce_${answer.outcome}` });
    await this.writeEnd(null, nothingRan(`runonce:${answer.outcome}`, answer.status, null, startedAt));
  }

  /** The command's process exists: log it, and write the start record (fail closed: the command is killed if it cannot be). */
  started(command: CommandHandle, token: bigint | null, startedAt: number, pty: boolean): void {
    const { log, audit } = this.ports;
    const { execId, request } = this;
    const { requester } = request;
    log.info(
      { execId, kind: request.kind, pid: command.pid, user: requester.username, account: requester.runAs.account.name, pty, client: clientLabel(request), rdJobExecId: request.env.rdJobExecId },
      'command started',
    );
    // The start record: a gateway killed mid-command still leaves a trace of what ran.
    audit.start({ ...this.identity(token), start: isoTime(startedAt), pid: command.pid, cgroup: command.cgroupPath }).catch((err: Error) => {
      // Fail closed: nothing runs whose start is not on record.
      log.error({ execId, err: err.message }, 'audit start record could not be written; killing the command');
      void command.terminate(`the audit start record could not be written (${err.message})`);
    });
  }

  /** Counts, logs and audits a command's end (the audit is written even when the client has vanished). */
  async finished(outcome: CommandOutcome, token: bigint | null): Promise<void> {
    const { log, metrics } = this.ports;
    metrics.commands.inc({ result: outcome.result.replace('-', '_') });
    metrics.commandDuration.observe((outcome.endedAt - outcome.startedAt) / 1000);
    log.info(
      {
        execId: this.execId,
        result: outcome.result,
        status: outcome.status,
        killReason: outcome.killReason,
        leftoversKilled: outcome.leftoversKilled,
        ms: outcome.endedAt - outcome.startedAt,
        ...(outcome.error ? { err: outcome.error } : {}),
      },
      'command finished',
    );
    await this.writeEnd(token, outcome);
  }

  /** Who ran what: the fields the start and end records share. */
  private identity(token: bigint | null) {
    const { username, keyFingerprint, runAs } = this.request.requester;
    return {
      execId: this.execId,
      user: username,
      account: runAs.account.name,
      uid: runAs.account.uid,
      keyFingerprint,
      client: clientLabel(this.request),
      command: this.commandLine,
      rdJobExecId: this.request.env.rdJobExecId,
      token: token === null ? null : token.toString(),
    };
  }

  private writeEnd(token: bigint | null, outcome: EndOutcome): Promise<void> {
    return this.ports.audit
      .end({
        ...this.identity(token),
        start: isoTime(outcome.startedAt),
        end: isoTime(outcome.endedAt),
        durationMs: outcome.endedAt - outcome.startedAt,
        result: outcome.result,
        exitStatus: outcome.status,
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        killReason: outcome.killReason,
        leftoverKilled: outcome.leftoversKilled,
        bytesOut: { stdout: outcome.stdoutBytes, stderr: outcome.stderrBytes },
        ...(outcome.error ? { error: outcome.error } : {}),
      })
      .catch((err: Error) => this.ports.log.error({ execId: this.execId, err: err.message }, 'audit write failed'));
  }
}
