import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { createMetrics } from '../../src/metrics.js';
import { KeyedCounter } from '../../src/ssh/limits.js';
import { CommandRegistry } from '../../src/exec/registry.js';
import type { AuditEndFields, AuditStartFields } from '../../src/audit/auditLog.js';
import type { CommandHandle, CommandOutcome, CommandSpec } from '../../src/exec/runner.js';
import { ExecutionPipeline, type ExecutionServices } from '../../src/command/pipeline.js';
import type { RunOnceDecider } from '../../src/command/admission.js';
import type { CommandChannel, CommandControl, CommandKind, CommandRequest, PtySize } from '../../src/command/request.js';
import { FakeLeadership } from './fakeLeadership.js';

/** A process that exits when the test says so (or at once with `autoExit`). */
export class FakeCommand implements CommandHandle {
  pid: number | null = 4242;
  readonly cgroupPath = null;
  readonly terminated: Array<{ reason: string; immediate: boolean }> = [];
  readonly done: Promise<CommandOutcome>;
  clientWentAway = false;
  private resolve!: (outcome: CommandOutcome) => void;
  private readonly startedAt = Date.now();

  constructor() {
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  signal(): boolean {
    return true;
  }

  terminate(reason: string, immediate = false): null {
    this.terminated.push({ reason, immediate });
    this.exit(143, 'killed', reason);
    return null;
  }

  clientGone(): void {
    this.clientWentAway = true;
  }

  exit(status: number, result: CommandOutcome['result'] = 'completed', killReason: string | null = null): void {
    this.resolve({
      result,
      status,
      exitCode: result === 'completed' ? status : null,
      signal: result === 'killed' ? 'SIGTERM' : null,
      killReason,
      error: null,
      pid: this.pid,
      startedAt: this.startedAt,
      endedAt: Date.now(),
      stdoutBytes: 3,
      stderrBytes: 0,
      leftoversKilled: 0,
    });
  }
}

/** The channel side: what the pipeline wrote and how it ended the channel. */
export function fakeChannel() {
  let close!: () => void;
  const closed = new Promise<void>((resolve) => (close = resolve));
  const ends: Array<{ how: 'refuse' | 'answer' | 'end'; status: number; text?: string }> = [];
  const inputs: Array<(chunk: Buffer) => void> = [];
  let attached: CommandControl | null = null;
  const stderr = new PassThrough();
  let stderrText = '';
  stderr.on('data', (d: Buffer) => (stderrText += d.toString()));
  const channel: CommandChannel = {
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    stderr,
    closed,
    refuse: async (text, status) => void ends.push({ how: 'refuse', status, text }),
    answer: async (text, status) => void ends.push({ how: 'answer', status, text }),
    end: async (status) => void ends.push({ how: 'end', status }),
    onInput: (listener) => void inputs.push(listener),
    attach: (command) => void (attached = command),
  };
  return { channel, ends, inputs, close, attachedCommand: () => attached, stderrText: () => stderrText };
}

export interface Fakes {
  services: ExecutionServices;
  pipeline: ExecutionPipeline;
  leadership: FakeLeadership;
  metrics: ReturnType<typeof createMetrics>;
  registry: CommandRegistry;
  slots: KeyedCounter;
  audit: { starts: AuditStartFields[]; ends: AuditEndFields[]; refusal: string | null; failStart: string | null };
  started: Array<{ spec: CommandSpec; pty: PtySize | null; command: FakeCommand }>;
  /** Exit status every started command exits with at once (null: the test ends them). */
  autoExit: number | null;
  /** Makes the next start throw (a command that cannot be planned or started). */
  startThrows: string | null;
}

export function makePipeline(options: { runOnce?: RunOnceDecider; gateWaitMs?: number; maxCommands?: number; maxCommandsPerUser?: number } = {}): Fakes {
  const log = pino({ level: 'silent' });
  const metrics = createMetrics('gw1', 'native');
  const registry = new CommandRegistry();
  const leadership = new FakeLeadership('gw1');
  const slots = new KeyedCounter(options.maxCommands ?? 10, options.maxCommandsPerUser ?? 10);
  const audit: Fakes['audit'] = { starts: [], ends: [], refusal: null, failStart: null };
  const fakes = { started: [], autoExit: 0, startThrows: null } as unknown as Fakes;
  const services: ExecutionServices = {
    environment: { allowed: (name) => name.startsWith('RD_') || name === 'LANG', maxEnvVars: 3, maxEnvBytes: 200 },
    admission: {
      node: 'gw1',
      limits: { maxCommandBytes: 100, maxCommands: options.maxCommands ?? 10, maxCommandsPerUser: options.maxCommandsPerUser ?? 10 },
      leadership,
      gateWaitMs: options.gateWaitMs ?? 0,
      runOnce: options.runOnce ?? null,
      audit: { refusal: () => audit.refusal },
      slots,
    },
    run: {
      plan: { node: 'gw1', shell: '/bin/sh', sftpServer: '/usr/lib/openssh/sftp-server', path: '/usr/bin:/bin' },
      killGraceMs: 1000,
      closeGraceMs: 100,
      starter: {
        start: (spec, pty) => {
          if (fakes.startThrows) throw new Error(fakes.startThrows);
          const command = new FakeCommand();
          fakes.started.push({ spec, pty, command });
          if (fakes.autoExit !== null) {
            const status = fakes.autoExit;
            setImmediate(() => command.exit(status));
          }
          return command;
        },
      },
      registry,
      metrics,
    },
    record: {
      log,
      metrics,
      audit: {
        start: async (fields) => {
          if (audit.failStart) throw new Error(audit.failStart);
          audit.starts.push(fields);
        },
        end: async (fields) => void audit.ends.push(fields),
      },
    },
    log,
  };
  return Object.assign(fakes, { services, pipeline: new ExecutionPipeline(services), leadership, metrics, registry, slots, audit });
}

/** A request as the SSH layer hands it over; env pairs go through the pipeline's collector. */
export function request(
  fakes: Fakes,
  kind: CommandKind,
  requested: string | null,
  options: { env?: Array<[string, string]>; user?: string; forced?: string; pty?: PtySize } = {},
): CommandRequest & { events: string[] } {
  const env = fakes.pipeline.environment();
  for (const [name, value] of options.env ?? []) env.add(name, value);
  const events: string[] = [];
  return {
    kind,
    requested,
    env,
    pty: () => options.pty ?? null,
    clientAddress: '192.0.2.7',
    clientPort: 40000,
    serverAddress: '192.0.2.1',
    serverPort: 22,
    requester: {
      username: options.user ?? 'alice',
      keyFingerprint: 'SHA256:abc',
      runAs: { account: { name: 'alice', uid: 1000, gid: 1000, home: '/', shell: '/bin/bash' }, switchUser: false },
      forcedCommand: options.forced ?? null,
      keyEnvironment: [],
    },
    activity: {
      commandDecided: () => void events.push('decided'),
      commandStarted: () => void events.push('started'),
      commandEnded: () => void events.push('ended'),
    },
    events,
  };
}

/** A counter's value for these labels (0 when never counted). */
export async function counted(counter: { get(): Promise<{ values: Array<{ labels: Record<string, unknown>; value: number }> }> }, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}
