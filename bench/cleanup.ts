import { rmSync } from 'node:fs';
import { isAlive, processTree } from './procfs.js';

/**
 * Everything the bench starts is registered here and stopped by PID: on normal end,
 * on an exception, and on Ctrl-C / SIGTERM. Nothing is ever killed by name.
 */
type Task = { label: string; run: () => Promise<void> | void };

const tasks: Task[] = [];
let running: Promise<void> | null = null;

export function onCleanup(label: string, run: () => Promise<void> | void): void {
  tasks.push({ label, run });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after graceMs, to one PID we started. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/**
 * Stops a server and whatever is still below it (sshd's per-connection children,
 * commands left running): the descendants are read from /proc before the root goes.
 */
export async function stopTree(rootPid: number, graceMs = 3000): Promise<void> {
  const descendants = processTree(rootPid)
    .map((p) => p.pid)
    .filter((pid) => pid !== rootPid);
  await stopPid(rootPid, graceMs);
  for (const pid of descendants) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function removeDirLater(dir: string): void {
  onCleanup(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
}

/** Runs the registered tasks in reverse order, once. */
export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (tasks.length > 0) {
      const task = tasks.pop()!;
      try {
        await task.run();
      } catch (err) {
        process.stderr.write(`bench: cleanup "${task.label}" failed: ${(err as Error).message}\n`);
      }
    }
  })();
  return running;
}

/** Ctrl-C and SIGTERM stop everything we started, then exit 130/143. */
export function installSignalHandlers(): void {
  const handler = (signal: NodeJS.Signals, code: number) => {
    process.stderr.write(`\nbench: ${signal}: stopping what the bench started...\n`);
    void cleanupAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => handler('SIGINT', 130));
  process.once('SIGTERM', () => handler('SIGTERM', 143));
  // A bug in a scenario must not leave servers and JVMs running: stop them, then fail.
  process.once('uncaughtException', (err) => {
    process.stderr.write(`\nbench: uncaught ${err.stack ?? String(err)}\nbench: stopping what the bench started...\n`);
    void cleanupAll().finally(() => process.exit(1));
  });
}
