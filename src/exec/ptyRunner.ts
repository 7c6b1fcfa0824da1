import type { Readable, Writable } from 'node:stream';
import pty from 'node-pty';
import { signalGroup, type GroupKillResult } from './processGroup.js';
import { CommandCgroup } from './cgroup.js';
import { TreeKiller } from './treeKiller.js';
import { exitStatusFor, FORWARDABLE_SIGNALS, type CommandHandle, type CommandOutcome, type CommandSpec } from './runner.js';
import { constants as osConstants } from 'node:os';

export interface PtySize {
  term: string;
  cols: number;
  rows: number;
}

const signalName = (n: number): NodeJS.Signals | null =>
  (Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined) ?? null;

/**
 * A command on a real pseudo-terminal (node-pty: forkpty, so the command is a session
 * and process-group leader with the pty as its controlling terminal). stdout and
 * stderr arrive merged, as with sshd.
 */
export class PtyCommand implements CommandHandle {
  readonly done: Promise<CommandOutcome>;
  readonly pid: number;
  private readonly term: pty.IPty;
  private readonly killer: TreeKiller;
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
    this.term = pty.spawn(file, args, {
      name: size.term || 'xterm',
      cols: Math.max(1, size.cols || 80),
      rows: Math.max(1, size.rows || 24),
      cwd: spec.cwd,
      env: { ...spec.env, TERM: size.term || 'xterm' },
      encoding: null,
    });
    this.pid = this.term.pid;
    cgroup?.enter(this.pid);
    this.killer = new TreeKiller(this.pid, spec.killGraceMs, cgroup);

    this.term.onData((data: string | Buffer) => {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      this.outBytes += chunk.length;
      spec.onOutput?.('stdout', chunk.length);
      // Backpressure: stop reading the pty while the SSH channel's window is full.
      if (!streams.stdout.write(chunk)) {
        this.term.pause();
        streams.stdout.once('drain', () => this.term.resume());
      }
    });
    const onInput = (chunk: Buffer) => this.term.write(chunk as unknown as string);
    streams.stdin.on('data', onInput);

    this.done = new Promise<CommandOutcome>((resolve) => {
      this.term.onExit(({ exitCode, signal }) => {
        this.killer.markExited();
        streams.stdin.off('data', onInput);
        const sig = signal ? signalName(signal) : null;
        const code = sig ? null : exitCode;
        void (async () => {
          await this.killer.settle();
          resolve({
            result: this.killer.reason !== null && sig !== null ? 'killed' : 'completed',
            status: exitStatusFor(code, sig),
            exitCode: code,
            signal: sig,
            killReason: this.killer.reason !== null && sig !== null ? this.killer.reason : null,
            error: null,
            pid: this.pid,
            startedAt,
            endedAt: Date.now(),
            stdoutBytes: this.outBytes,
            stderrBytes: 0,
          });
        })();
      });
    });
  }

  resize(cols: number, rows: number): void {
    if (!this.killer.hasExited && cols > 0 && rows > 0) this.term.resize(cols, rows);
  }

  signal(name: string): boolean {
    if (!FORWARDABLE_SIGNALS.has(name)) return false;
    return signalGroup(this.pid, `SIG${name}` as NodeJS.Signals);
  }

  terminate(reason: string, immediate = false): Promise<GroupKillResult> {
    return this.killer.terminate(reason, immediate);
  }

  /** The client went away: hang up the terminal's processes like sshd, then kill the tree. */
  clientGone(): void {
    if (this.killer.hasExited) return;
    signalGroup(this.pid, 'SIGHUP');
    setTimeout(() => void this.terminate('client disconnected'), this.spec.closeGraceMs).unref();
  }
}
