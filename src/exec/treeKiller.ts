import type { CommandCgroup } from './cgroup.js';
import { killProcessGroup, signalGroup, type GroupKillResult } from './processGroup.js';

/**
 * Kills one command's whole tree, once: SIGTERM to its process group, SIGKILL after
 * the grace (or at once when fencing), then everything still in its cgroup, which also
 * reaches children that called setsid. Shared by the pipe and pty runners.
 */
export class TreeKiller {
  /** Why the command was killed; null when it ended by itself. */
  reason: string | null = null;
  /** Processes killed through the cgroup after the process group was dealt with. */
  leftoversKilled = 0;
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
      this.killing = killProcessGroup(this.pgid, this.graceMs, immediate).then(async (result) => {
        // What left the process group (setsid, double fork) may still hold the output
        // pipes open: the command is over only when its cgroup is empty.
        await this.sweepLeftovers();
        return result;
      });
    } else if (immediate) {
      signalGroup(this.pgid, 'SIGKILL');
    }
    return this.killing;
  }

  private async sweepLeftovers(): Promise<void> {
    if (this.cgroup) this.leftoversKilled += await this.cgroup.sweep();
  }

  /**
   * Once the command has exited and its output is read: waits for a kill in progress
   * (if any), kills whatever it left in its cgroup, and gives the cgroup back.
   */
  async settle(): Promise<void> {
    try {
      if (this.killing) await this.killing;
      await this.sweepLeftovers();
    } finally {
      this.cgroup?.release();
    }
  }
}
