import type { Readable, Writable } from 'node:stream';
import type { Metrics } from '../metrics.js';
import type { CommandRegistry } from '../exec/registry.js';
import { spawnFailedOutcome, type CommandHandle, type CommandOutcome, type CommandSpec } from '../exec/runner.js';
import type { ScriptReplicaPort } from '../cluster/scriptReplica.js';
import type { ScpAckGate } from '../cluster/scpAckGate.js';
import { planCommand, type PlanSettings } from './plan.js';
import type { CommandRecord } from './record.js';
import { clientLabel, type CommandChannel, type CommandRequest, type PtySize } from './request.js';
import { dispatchUploadGate, followDispatchScriptChange } from './dispatchScripts.js';

/** Starts a process: with pipes, or on a pty (stdout and stderr merged). Never throws for a command that cannot start. */
export interface CommandStarter {
  start(spec: CommandSpec, pty: PtySize | null, streams: { stdin: Readable; stdout: Writable; stderr: Writable }): CommandHandle;
}

export interface RunPorts {
  plan: PlanSettings;
  killGraceMs: number;
  /** How long a command may take to end by itself after its client went away. */
  closeGraceMs: number;
  starter: CommandStarter;
  registry: Pick<CommandRegistry, 'add' | 'finish'>;
  metrics: Pick<Metrics, 'commandsRunning' | 'outputBytes'>;
  /** Cluster nodes: Rundeck's script uploads and cleanups reach the other nodes too. */
  scriptReplica?: ScriptReplicaPort;
}

/** An error for the client's terminal: one line, control bytes escaped, at most 300 characters. */
const oneLine = (text: string) => {
  const escaped = text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > 300 ? `${escaped.slice(0, 297)}...` : escaped;
};

/** A command that never started (planning threw): it settles at once as spawn-failed. */
const notStarted = (error: string, startedAt: number): CommandHandle => ({
  pid: null,
  cgroupPath: null,
  done: Promise.resolve(spawnFailedOutcome(error, startedAt)),
  signal: () => false,
  terminate: () => null,
  clientGone: () => {},
});

/**
 * Starts an admitted command and waits for its end. Every path ends the channel with an
 * exit status and writes the audit; the registry entry lives exactly as long as the
 * process can.
 */
export async function runCommand(ports: RunPorts, request: CommandRequest, channel: CommandChannel, record: CommandRecord, token: bigint | null): Promise<CommandOutcome> {
  const { execId, commandLine } = record;
  const startedAt = Date.now();
  const pty = request.pty();
  let command: CommandHandle;
  let upload: ScpAckGate | null = null;
  try {
    const plan = planCommand(ports.plan, request, execId, token);
    if (plan.notice) channel.stderr.write(plan.notice);
    const spec: CommandSpec = {
      file: plan.file,
      args: plan.args,
      env: plan.env,
      cwd: plan.cwd,
      killGraceMs: ports.killGraceMs,
      closeGraceMs: ports.closeGraceMs,
      onOutput: (stream, bytes) => ports.metrics.outputBytes.inc({ stream }, bytes),
    };
    upload = dispatchUploadGate(ports.scriptReplica, request, pty !== null, channel.stdout);
    command = ports.starter.start(spec, pty, { stdin: channel.stdin, stdout: upload?.writable ?? channel.stdout, stderr: channel.stderr });
    if (upload) channel.onInput(upload.observeClient); // after the command's own pipe is attached
  } catch (err) {
    command = notStarted((err as Error).message, startedAt);
  }
  channel.attach(command);
  const tokenText = token === null ? null : token.toString();
  let outcome: CommandOutcome | undefined;
  ports.registry.add(
    { execId, user: request.requester.username, command: commandLine, client: clientLabel(request), startedAt, pid: command.pid, token: tokenText, server: request.serverAddress },
    command,
  );
  ports.metrics.commandsRunning.inc();
  request.activity.commandStarted();
  try {
    if (command.pid !== null) {
      record.started(command, token, startedAt, pty !== null);
      let clientGone = false;
      void channel.closed.then(() => {
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
    ports.registry.finish(execId, ended);
    ports.metrics.commandsRunning.dec();
    request.activity.commandEnded();
    await record.finished(ended, token);
  }
  await upload?.settled(); // a held scp acknowledgement goes out before the exit status
  // Rundeck's chmod and cleanup reach the peers before the client hears they succeeded.
  if (outcome.result === 'completed' && outcome.status === 0) await followDispatchScriptChange(ports.scriptReplica, request, commandLine);
  if (outcome.result === 'spawn-failed') await channel.refuse(`execgate: cannot run the command: ${oneLine(outcome.error ?? 'unknown error')}`, outcome.status);
  else await channel.end(outcome.status);
  return outcome;
}
