import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { rmdir, writeFile } from 'node:fs/promises';
import { componentLogger } from '../log.js';
import { processGroupMembers } from './processGroup.js';

/**
 * One cgroup v2 per command, so a process that leaves the command's process group
 * (`setsid`, a double fork) is still killed when the gateway fences: cgroup.kill (Linux
 * 5.14+) SIGKILLs every member atomically, including ones forked during the kill.
 *
 * Parent: $EXECGATE_CGROUP_PARENT (a cgroup2 directory; "off" disables), else
 * `<cgroup2 mount><execgate's own cgroup>/execgate-<pid>` (under systemd that needs
 * Delegate=yes). Where cgroup v2 is missing or not writable, commands run without one
 * (the process-group kill still applies) and this is logged once.
 *
 * A command must be inside its cgroup before it can fork: moving it after spawn loses
 * the race against `sh -c 'setsid x &'` (measured: the child was already outside). So
 * the command is started through a tiny /bin/sh wrapper that moves itself into the
 * cgroup and then execs the real program (same pid, same argv for the program).
 */

export interface CgroupSupport {
  available: boolean;
  /** Where command cgroups are created, when available. */
  parent: string | null;
  /** Why not, or how. */
  detail: string;
  /** cgroup.kill exists (else: freeze, SIGKILL every member, thaw). */
  killFile: boolean;
}

let support: CgroupSupport | null = null;
let sequence = 0;
const lingering = new Set<string>();

const log = () => componentLogger('exec/cgroup');

/** The cgroup2 mount point, from /proc/self/mountinfo. */
function cgroup2Mount(): string | null {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (!left || !right) continue;
      if (right.split(' ')[0] === 'cgroup2') return left.split(' ')[4] ?? null;
    }
  } catch {
    // not Linux, or no /proc
  }
  return null;
}

/** This process's cgroup v2 path ("0::/path" in /proc/self/cgroup). */
function ownCgroup(): string | null {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : null;
  } catch {
    return null;
  }
}

function detect(): CgroupSupport {
  const configured = process.env.EXECGATE_CGROUP_PARENT;
  if (configured === 'off') return { available: false, parent: null, detail: 'disabled by EXECGATE_CGROUP_PARENT=off', killFile: false };
  let parent: string;
  if (configured) {
    parent = configured;
  } else {
    const mount = cgroup2Mount();
    if (!mount) return { available: false, parent: null, detail: 'no cgroup2 filesystem is mounted', killFile: false };
    const own = ownCgroup();
    if (own === null) return { available: false, parent: null, detail: 'this process has no cgroup v2 membership', killFile: false };
    parent = join(mount, own, `execgate-${process.pid}`);
    removeStaleParents(dirname(parent));
  }
  try {
    mkdirSync(parent, { recursive: true });
    accessSync(join(parent, 'cgroup.procs'), constants.W_OK);
    const probe = join(parent, `probe-${process.pid}`);
    mkdirSync(probe);
    const killFile = existsSync(join(probe, 'cgroup.kill'));
    rmdirSync(probe);
    process.once('exit', () => {
      for (const dir of lingering) tryRemove(dir);
      if (!configured) tryRemove(parent);
    });
    return { available: true, parent, detail: `one cgroup per command under ${parent}`, killFile };
  } catch (err) {
    return { available: false, parent: null, detail: `cannot create cgroups under ${parent}: ${(err as Error).message}`, killFile: false };
  }
}

/** Detects (once) whether commands can get their own cgroup; logs the answer once. */
export function cgroupSupport(): CgroupSupport {
  if (!support) {
    support = detect();
    if (support.available) log().info({ parent: support.parent, cgroupKill: support.killFile }, 'commands run in their own cgroup v2');
    else log().warn({ reason: support.detail }, 'cgroup v2 not usable: processes a command leaves behind (setsid, daemons) cannot be found, so they outlive it and escape the fence kill');
  }
  return support;
}

/** Empty command cgroups left by gateways that died without cleaning up (SIGKILL). */
function removeStaleParents(base: string): void {
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = /^execgate-(\d+)$/.exec(entry);
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    const dir = join(base, entry);
    try {
      for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) tryRemove(join(dir, child.name));
    } catch {
      // raced with someone else
    }
    tryRemove(dir);
  }
}

function tryRemove(dir: string): boolean {
  try {
    rmdirSync(dir);
    lingering.delete(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

function members(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A command's own cgroup. */
export class CommandCgroup {
  private constructor(
    readonly path: string,
    private readonly killFile: boolean,
  ) {}

  /** A fresh, empty cgroup for the next command; null where cgroups are not usable. */
  static prepare(): CommandCgroup | null {
    const s = cgroupSupport();
    if (!s.available || !s.parent) return null;
    for (const dir of [...lingering]) tryRemove(dir);
    const path = join(s.parent, `cmd-${process.pid}-${++sequence}`);
    try {
      mkdirSync(path);
    } catch {
      return null; // the hierarchy went away
    }
    return new CommandCgroup(path, s.killFile);
  }

  /**
   * Moves an already running command (and what its process group holds) into a new
   * cgroup. Racy: a child that called setsid before the move stays outside; prefer
   * prepare() + wrap() before spawn, then enter(pid).
   */
  static adopt(pid: number): CommandCgroup | null {
    const cgroup = CommandCgroup.prepare();
    if (!cgroup) return null;
    cgroup.enter(pid);
    for (const member of processGroupMembers(pid)) if (member !== pid) cgroup.enter(member);
    return cgroup;
  }

  /** The argv that enters this cgroup first, then execs file with args (same pid). */
  wrap(file: string, args: string[]): [string, string[]] {
    return ['/bin/sh', ['-c', 'echo $$ > "$1" 2>/dev/null; shift; exec "$@"', 'execgate-cgroup', join(this.path, 'cgroup.procs'), file, ...args]];
  }

  /**
   * After spawn: makes sure the command itself is inside, in case the wrapper could
   * not move itself (a no-op otherwise).
   */
  enter(pid: number): void {
    // Asynchronous: a cgroup migration can take milliseconds in the kernel, and the
    // wrapper has normally moved the process already; never stall the event loop.
    writeFile(join(this.path, 'cgroup.procs'), String(pid)).catch(() => {
      // exited meanwhile
    });
  }

  /** SIGKILLs every process in the cgroup, whatever its session or process group. */
  kill(): void {
    if (this.killFile) {
      try {
        writeFileSync(join(this.path, 'cgroup.kill'), '1');
        return;
      } catch {
        // fall through
      }
    }
    // Older kernels: freeze so nothing forks while we kill, kill all, thaw.
    const freeze = (v: string) => {
      try {
        writeFileSync(join(this.path, 'cgroup.freeze'), v);
      } catch {
        // no freezer
      }
    };
    freeze('1');
    for (const pid of members(this.path)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    freeze('0');
  }

  /** Processes still in the cgroup. */
  members(): number[] {
    return members(this.path);
  }

  /**
   * Kills whatever is still in the cgroup (what a command left behind: `setsid x &`,
   * daemons) and waits until it is empty. Returns how many processes were killed.
   */
  async sweep(timeoutMs = 2000): Promise<number> {
    const left = members(this.path);
    if (left.length === 0) return 0;
    this.kill();
    const deadline = Date.now() + timeoutMs;
    while (members(this.path).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return left.length;
  }

  /** Removes the cgroup once empty; processes that outlived the command keep it until they end. */
  release(): void {
    rmdir(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') lingering.add(this.path);
    });
  }
}
