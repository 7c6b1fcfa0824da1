import type { BenchOptions } from './options.js';
import type { BenchKeys } from './keys.js';
import type { Results } from './results.js';
import type { BenchServer } from './servers/types.js';
import type { LoginUser } from './servers/loginUser.js';
import { processTree } from './procfs.js';
import { sleep } from './cleanup.js';

export interface BenchContext {
  options: BenchOptions;
  /** [execgate, sshd] */
  servers: BenchServer[];
  keys: BenchKeys;
  /** The account both servers run commands as (for servers started later, e.g. jscrypto). */
  user: LoginUser;
  results: Results;
  dir: string;
  log: (message: string) => void;
  /** A section that could not measure what it should: logged, printed after the table, exit 1. */
  fail: (section: string, message: string) => void;
}

/** Interleaving: even iterations run execgate first, odd ones sshd first. */
export function inOrder(servers: BenchServer[], i: number): BenchServer[] {
  return i % 2 === 0 ? servers : [...servers].reverse();
}

/**
 * Waits until nothing is below the server (sshd connection processes, commands), not
 * even a zombie: only a reaped child's CPU is in the server's cutime/cstime.
 */
export async function waitQuiet(server: BenchServer, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (processTree(server.pid, true).length <= 1) return true;
    await sleep(25);
  }
  return false;
}

/** A wall-clock budget for one section, so no loop runs unbounded. */
export class Budget {
  private readonly end: number;
  constructor(
    readonly label: string,
    ms: number,
  ) {
    this.end = Date.now() + ms;
  }
  get exceeded(): boolean {
    return Date.now() > this.end;
  }
}
