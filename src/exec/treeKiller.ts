import type { CommandCgroup } from './cgroup.js';
import { killProcessGroup, signalGroup, type GroupKillResult } from './processGroup.js';

/**
 * Kills one command's whole tree, once: SIGTERM to its process group, SIGKILL after
 * the grace (or at once when fencing, then through its cgroup too, which also
 * reaches children that called setsid). Shared by the pipe and pty runners.
 */
export class TreeKiller {
  /** Why the command was killed; null when it ended by itself. */
  reason: string | null = null;
  private killing: Promise<GroupKillResult> | null = null;
  private exited = false;

  constructor(
    private readonly pgid: number,
    private readonly graceMs: number,
    private readonly cgroup: CommandCgroup | null,
  ) {}

  /** The command's own process has exited: later kills only clean up leftovers. */
  markExited(): void {
    this.exited = true;
  }

  get hasExited(): boolean {
    return this.exited;
  }

  terminate(reason: string, immediate: boolean): Promise<GroupKillResult> {
    if (immediate) this.cgroup?.kill();
    if (!this.killing) {
      // Once the command itself has exited, only leftovers are killed: its result stands.
      if (!this.exited) this.reason = reason;
      this.killing = killProcessGroup(this.pgid, this.graceMs, immediate);
    } else if (immediate) {
      signalGroup(this.pgid, 'SIGKILL');
    }
    return this.killing;
  }

  /** Waits for a kill in progress (if any), then gives the cgroup back. */
  async settle(): Promise<void> {
    if (this.killing) await this.killing;
    this.cgroup?.release();
  }
}
