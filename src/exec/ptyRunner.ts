import type { Readable, Writable } from 'node:stream';
import pty from 'node-pty';
import { signalGroup, type GroupKillResult } from './processGroup.js';
import { CommandCgroup } from './cgroup.js';
import { TreeKiller } from './treeKiller.js';
import { exitStatusFor, FORWARDABLE_SIGNALS, spawnFailedOutcome, type CommandHandle, type CommandOutcome, type CommandSpec } from './runner.js';
import { constants as osConstants } from 'node:os';

export interface PtySize {
  term: string;
  cols: number;
  rows: number;
}

const signalName = (n: number): NodeJS.Signals | null => (Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined) ?? null;

/**
 * A command on a real pseudo-terminal (node-pty: forkpty, so the command is a session
 * and process-group leader with the pty as its controlling terminal). stdout and
 * stderr arrive merged, as with sshd.
 */
export class PtyCommand implements CommandHandle {
  readonly done: Promise<CommandOutcome>;
  readonly pid: number | null = null;
  readonly cgroupPath: string | null = null;
  private readonly term: pty.IPty | null = null;
  private readonly killer: TreeKiller | null = null;
  private outBytes = 0;

  constructor(
    private readonly spec: CommandSpec,
    size: PtySize,
    streams: { stdin: Readable; stdout: Writable },
  ) {
    const startedAt = Date.now();
    // Enter the command's own cgroup before it can fork (a setsid child cannot leave it).
    const cgroup = CommandCgroup.prepare();
    const [file, args] = cgroup ? cgroup.wrap(spec.file, spec.args) : [spec.file, spec.args];
    let term: pty.IPty;
    try {
      term = pty.spawn(file, args, {
        name: size.term || 'xterm',
        cols: Math.max(1, size.cols || 80),
        rows: Math.max(1, size.rows || 24),
        cwd: spec.cwd,
        env: { ...spec.env, TERM: size.term || 'xterm' },
        encoding: null,
      });
    } catch (err) {
      cgroup?.release();
      this.done = Promise.resolve(spawnFailedOutcome((err as Error).message, startedAt));
      return;
    }
    this.term = term;
    const pid = term.pid;
    this.pid = pid;
    this.cgroupPath = cgroup?.path ?? null;
    cgroup?.enter(pid);
    const killer = new TreeKiller(pid, spec.killGraceMs, cgroup);
    this.killer = killer;

    term.onData((data: string | Buffer) => {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      this.outBytes += chunk.length;
      spec.onOutput?.('stdout', chunk.length);
      // Backpressure: stop reading the pty while the SSH channel's window is full.
      if (!streams.stdout.write(chunk)) {
        term.pause();
        streams.stdout.once('drain', () => term.resume());
      }
    });
    const onInput = (chunk: Buffer) => term.write(chunk as unknown as string);
    streams.stdin.on('data', onInput);

    this.done = new Promise<CommandOutcome>((resolve) => {
      term.onExit(({ exitCode, signal }) => {
        killer.markExited();
        streams.stdin.off('data', onInput);
        const sig = signal ? signalName(signal) : null;
        const code = sig ? null : exitCode;
        const finish = () =>
          resolve({
            result: killer.reason !== null && sig !== null ? 'killed' : 'completed',
            status: exitStatusFor(code, sig),
            exitCode: code,
            signal: sig,
            killReason: killer.reason !== null && sig !== null ? killer.reason : null,
            error: null,
            pid,
            startedAt,
            endedAt: Date.now(),
            stdoutBytes: this.outBytes,
            stderrBytes: 0,
            leftoversKilled: killer.leftoversKilled,
          });
        killer.settle().then(finish, finish);
      });
    });
  }

  resize(cols: number, rows: number): void {
    if (this.term && this.killer && !this.killer.hasExited && cols > 0 && rows > 0) this.term.resize(cols, rows);
  }

  signal(name: string): boolean {
    if (this.pid === null || !FORWARDABLE_SIGNALS.has(name)) return false;
    return signalGroup(this.pid, `SIG${name}` as NodeJS.Signals);
  }

  terminate(reason: string, immediate = false): Promise<GroupKillResult> | null {
    return this.killer?.terminate(reason, immediate) ?? null;
  }

  /** The client went away: hang up the terminal's processes like sshd, then kill the tree. */
  clientGone(): void {
    if (this.pid === null || !this.killer || this.killer.hasExited) return;
    signalGroup(this.pid, 'SIGHUP');
    setTimeout(() => void this.terminate('client disconnected'), this.spec.closeGraceMs).unref();
  }
}
