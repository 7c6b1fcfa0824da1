import type { CommandHandle, CommandOutcome } from './runner.js';
import { unmapIPv4 } from '../address.js';

export interface CommandInfo {
  execId: string;
  user: string;
  command: string;
  client: string;
  startedAt: number;
  pid: number | null;
  token: string | null;
  /** The local address the connection came in on (the VIP, or the node's own address). */
  server?: string;
}

export interface FinishedCommand extends CommandInfo {
  endedAt: number;
  result: string;
  exitStatus: number;
}

const RECENT_LIMIT = 100;

/** What runs now and what ran last: the source for status, shutdown and fencing. */
export class CommandRegistry {
  private readonly running = new Map<string, { info: CommandInfo; command: CommandHandle }>();
  private readonly recent: FinishedCommand[] = [];

  add(info: CommandInfo, command: CommandHandle): void {
    this.running.set(info.execId, { info, command });
  }

  finish(execId: string, outcome: Pick<CommandOutcome, 'endedAt' | 'result' | 'status'>): void {
    const entry = this.running.get(execId);
    if (!entry) return;
    this.running.delete(execId);
    this.recent.push({ ...entry.info, endedAt: outcome.endedAt, result: outcome.result, exitStatus: outcome.status });
    if (this.recent.length > RECENT_LIMIT) this.recent.shift();
  }

  get size(): number {
    return this.running.size;
  }

  /** Running commands whose connection came in on `address`. */
  countVia(address: string): number {
    let n = 0;
    for (const e of this.running.values()) if (e.info.server !== undefined && unmapIPv4(e.info.server) === address) n++;
    return n;
  }

  listRunning(): CommandInfo[] {
    return [...this.running.values()].map((e) => e.info);
  }

  listRecent(): FinishedCommand[] {
    return [...this.recent].reverse();
  }

  /** Kills every running command; resolves when all of them have been seen gone. */
  async terminateAll(reason: string, immediate = false): Promise<void> {
    const commands = [...this.running.values()].map((e) => e.command);
    await Promise.all(commands.map((c) => c.terminate(reason, immediate)));
    await Promise.all(commands.map((c) => c.done));
  }
}
