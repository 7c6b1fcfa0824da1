import type { ChildProcess } from 'node:child_process';

/** A process the lab started, with its output (the last 200-400 kB). */
export interface Proc {
  child: ChildProcess;
  out: string;
  /** Set before the lab stops it on purpose (no supervisor action). */
  stopping: boolean;
}

export function captureOutput(child: ChildProcess): Proc {
  const proc: Proc = { child, out: '', stopping: false };
  const keep = (d: Buffer) => {
    proc.out += d.toString();
    if (proc.out.length > 400_000) proc.out = proc.out.slice(-200_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return proc;
}

/** `signal` to the process, SIGKILL to its whole group after `timeoutMs`; resolves once it exited. */
export async function stopProc(p: Proc | null, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.stopping = true;
  const exited = new Promise((r) => p.child.once('exit', r));
  try {
    process.kill(p.child.pid!, signal);
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(-p.child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }, timeoutMs);
  await exited;
  clearTimeout(t);
}
