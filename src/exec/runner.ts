import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import { signalGroup, type GroupKillResult } from './processGroup.js';
import { CommandCgroup } from './cgroup.js';
import { TreeKiller } from './treeKiller.js';
import { EXIT_CANNOT_RUN } from '../exitCodes.js';

export interface CommandSpec {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  killGraceMs: number;
  /** How long a command may take to end by itself after its client went away. */
  closeGraceMs: number;
  /** Called for every chunk of output, for live byte counters. */
  onOutput?: (stream: 'stdout' | 'stderr', bytes: number) => void;
}

export interface CommandStreams {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

export type CommandResult = 'completed' | 'killed' | 'spawn-failed';

export interface CommandOutcome {
  result: CommandResult;
  /** What goes back as exit-status: the exit code, or 128 + signal number. */
  status: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  killReason: string | null;
  error: string | null;
  pid: number | null;
  startedAt: number;
  endedAt: number;
  stdoutBytes: number;
  stderrBytes: number;
  /** Processes the command left behind (outside its process group) that were killed at its end. */
  leftoversKilled: number;
}

export const FORWARDABLE_SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);

/** What the SSH layer holds on to while a command runs (pipes or a pty). */
export interface CommandHandle {
  readonly pid: number | null;
  /** The command's own cgroup, or null where cgroups are not used. */
  readonly cgroupPath: string | null;
  /** Settles once the command and everything it left behind are gone; never rejects. */
  readonly done: Promise<CommandOutcome>;
  signal(name: string): boolean;
  terminate(reason: string, immediate?: boolean): Promise<GroupKillResult> | null;
  clientGone(): void;
  resize?(cols: number, rows: number): void;
}

export function exitStatusFor(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + (osConstants.signals[signal] ?? 0);
  return 255;
}

/** The outcome of a command that never ran (spawn threw, or the program could not be executed). */
export function spawnFailedOutcome(error: string, startedAt: number): CommandOutcome {
  return {
    result: 'spawn-failed',
    status: EXIT_CANNOT_RUN,
    exitCode: null,
    signal: null,
    killReason: null,
    error,
    pid: null,
    startedAt,
    endedAt: Date.now(),
    stdoutBytes: 0,
    stderrBytes: 0,
    leftoversKilled: 0,
  };
}

/** The command as its own process-group leader, with piped, unbuffered binary streams. */
function spawnDetached(file: string, args: string[], spec: CommandSpec) {
  return execa(file, args, {
    env: spec.env,
    extendEnv: false,
    cwd: spec.cwd,
    detached: true,
    cleanup: false,
    buffer: false,
    reject: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    encoding: 'buffer',
    stripFinalNewline: false,
  });
}

/**
 * One command in its own process group (detached => setsid), streamed with
 * backpressure, never buffered whole. It knows nothing about SSH. Construction never
 * throws: a command that cannot start settles `done` as spawn-failed.
 */
export class RunningCommand implements CommandHandle {
  readonly done: Promise<CommandOutcome>;
  readonly pid: number | null = null;
  readonly cgroupPath: string | null = null;
  private readonly killer: TreeKiller | null = null;
  private stdoutBytes = 0;
  private stderrBytes = 0;
  private readonly child: { stdin: Writable; stdout: Readable; stderr: Readable } | null = null;

  constructor(
    private readonly spec: CommandSpec,
    private readonly streams: CommandStreams,
  ) {
    const startedAt = Date.now();
    // Enter the command's own cgroup before it can fork (a setsid child cannot leave it).
    const cgroup = CommandCgroup.prepare();
    const [file, args] = cgroup ? cgroup.wrap(spec.file, spec.args) : [spec.file, spec.args];
    let child: ReturnType<typeof spawnDetached>;
    try {
      child = spawnDetached(file, args, spec);
    } catch (err) {
      // Invalid arguments (a NUL byte in the command or an environment value).
      cgroup?.release();
      this.done = Promise.resolve(spawnFailedOutcome((err as Error).message, startedAt));
      return;
    }
    // execa settles its promise in every case, including an "early error" child that
    // never emits exit or error (invalid options): that settles the command too.
    const settled = Promise.resolve(child).then(
      (r) => ({
        code: r.exitCode ?? null,
        signal: (r.signal ?? null) as NodeJS.Signals | null,
        error: r.failed && child.pid === undefined ? r.originalMessage || r.shortMessage || 'spawn failed' : null,
      }),
      (err: Error) => ({ code: null, signal: null, error: err.message as string | null }),
    );
    const pid = child.pid ?? null;
    if (pid === null) {
      cgroup?.release();
      this.done = settled.then((r) => spawnFailedOutcome(r.error ?? 'the command could not be started', startedAt));
      return;
    }
    this.pid = pid;
    this.cgroupPath = cgroup?.path ?? null;
    cgroup?.enter(pid);
    const killer = new TreeKiller(pid, spec.killGraceMs, cgroup);
    this.killer = killer;

    const { stdin, stdout, stderr } = child;
    this.child = { stdin, stdout, stderr };
    stdin.on('error', () => {}); // EPIPE when the command does not read its input
    streams.stdin.pipe(stdin);
    stdout.on('data', (chunk: Buffer) => {
      this.stdoutBytes += chunk.length;
      spec.onOutput?.('stdout', chunk.length);
    });
    stderr.on('data', (chunk: Buffer) => {
      this.stderrBytes += chunk.length;
      spec.onOutput?.('stderr', chunk.length);
    });
    stdout.pipe(streams.stdout, { end: false });
    stderr.pipe(streams.stderr, { end: false });

    const closed = (s: Readable) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error: string | null }>((resolve) => {
      child.once('error', (err) => resolve({ code: null, signal: null, error: err.message }));
      child.once('exit', (code, signal) => {
        killer.markExited();
        resolve({ code, signal, error: null });
      });
      void settled.then(resolve);
    });

    this.done = (async () => {
      const { code, signal, error } = await exit;
      try {
        // Output still in the pipes belongs to the command: read it all (as sshd does).
        await Promise.all([closed(stdout), closed(stderr)]);
        streams.stdin.unpipe(stdin);
      } finally {
        await killer.settle();
      }
      // Killed means it died of our signal; a command that exited by itself (even just
      // before a kill that raced its exit, or by trapping SIGTERM) completed.
      const result = killer.reason && signal !== null ? 'killed' : 'completed';
      return this.outcome(result, code, signal, error, startedAt);
    })().catch((err: Error) => ({ ...spawnFailedOutcome(err.message, startedAt), pid }));
  }

  private outcome(result: 'completed' | 'killed', exitCode: number | null, signal: NodeJS.Signals | null, error: string | null, startedAt: number): CommandOutcome {
    return {
      result,
      status: exitStatusFor(exitCode, signal),
      exitCode,
      signal,
      killReason: result === 'killed' ? (this.killer?.reason ?? null) : null,
      error,
      pid: this.pid,
      startedAt,
      endedAt: Date.now(),
      stdoutBytes: this.stdoutBytes,
      stderrBytes: this.stderrBytes,
      leftoversKilled: this.killer?.leftoversKilled ?? 0,
    };
  }

  /** Forwards an SSH "signal" request (name without SIG) to the whole group. */
  signal(name: string): boolean {
    if (this.pid === null || !FORWARDABLE_SIGNALS.has(name)) return false;
    return signalGroup(this.pid, `SIG${name}` as NodeJS.Signals);
  }

  /** Kills the whole process tree: SIGTERM, SIGKILL after the grace (or at once). */
  terminate(reason: string, immediate = false): Promise<GroupKillResult> | null {
    return this.killer?.terminate(reason, immediate) ?? null;
  }

  /**
   * The client went away: give the command stdin EOF and a moment to end by itself
   * (scp -t exits 0 right after its last ack), then kill the tree.
   */
  clientGone(): void {
    if (!this.child) return;
    const { stdin, stdout, stderr } = this.child;
    this.streams.stdin.unpipe(stdin);
    stdin.end();
    for (const out of [stdout, stderr]) {
      out.unpipe();
      out.resume(); // nobody reads it any more; do not let the command block on a full pipe
    }
    if (this.pid === null) return;
    setTimeout(() => void this.terminate('client disconnected'), this.spec.closeGraceMs).unref();
  }
}
