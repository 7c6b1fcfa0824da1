import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import { EXIT_CANNOT_RUN, EXIT_TEMPFAIL } from '../exitCodes.js';
import { admitCommand, type AdmissionPorts } from './admission.js';
import { ClientEnvironment, type EnvPolicy } from './clientEnvironment.js';
import { CommandRecord, type RecordPorts } from './record.js';
import { runCommand, type RunPorts } from './run.js';
import type { CommandChannel, CommandPipeline, CommandRequest } from './request.js';

/** What each step of the pipeline is given: its own ports and settings, nothing more. */
export interface ExecutionServices {
  environment: EnvPolicy;
  admission: AdmissionPorts;
  run: RunPorts;
  record: RecordPorts;
  /** For the last resort: a step that threw. */
  log: Logger;
}

/** Admits, plans, runs and records each command a session channel asks for. */
export class ExecutionPipeline implements CommandPipeline {
  constructor(private readonly services: ExecutionServices) {}

  environment(): ClientEnvironment {
    return new ClientEnvironment(this.services.environment);
  }

  async open(request: CommandRequest, channel: CommandChannel): Promise<void> {
    try {
      await this.handle(request, channel);
    } catch (err) {
      // Last resort: whatever threw, the client gets an answer and the channel ends.
      const { message, stack } = err as Error;
      this.services.log.error({ err: message, stack }, 'session handling failed');
      await channel.refuse(`execgate: internal error (${message}); not running`, EXIT_CANNOT_RUN).catch(() => {});
    }
  }

  private async handle(request: CommandRequest, channel: CommandChannel): Promise<void> {
    const { services } = this;
    const startedAt = Date.now();
    const record = new CommandRecord(services.record, request, randomUUID());
    const admission = await admitCommand(services.admission, request, channel.closed);
    if (admission.verdict === 'refuse') {
      try {
        await record.refused(admission.reason, admission.message, startedAt);
        await channel.refuse(admission.message, EXIT_TEMPFAIL);
      } finally {
        await admission.claim?.finish(EXIT_TEMPFAIL);
      }
      return;
    }
    if (admission.verdict === 'answer') {
      // A run-once loser: one line naming the winner, and the winner's exit status.
      await record.answered(admission, startedAt);
      await channel.answer(admission.line, admission.status);
      return;
    }
    // The slot and the run-once claim (if any) have one owner each: both are given back on every path.
    let finalStatus = EXIT_CANNOT_RUN;
    try {
      try {
        finalStatus = (await runCommand(services.run, request, channel, record, admission.token)).status;
      } finally {
        admission.slot.release();
      }
    } finally {
      await admission.claim?.finish(finalStatus);
    }
  }
}
