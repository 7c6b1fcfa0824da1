/**
 * The lab's hosts: network namespaces (namespaces.ts), and for a machine with disks (a
 * gateway, the load balancer) a private mount namespace with its own /tmp and host
 * directory.
 *
 * Host model: one "anchor" per host, `ip netns exec NS unshare --mount --propagation
 * private sh -c 'mount tmpfs…; exec sleep infinity'`, stands for the machine's disks;
 * every other process of the host enters the anchor's mount and network namespaces
 * (`nsenter -t ANCHOR -m -n`). "Host loss" kills every process but the anchor (the
 * disk survives a crash, as on a real machine). The controller reads a host's files
 * through /proc/ANCHOR/root.
 */
import { spawn, spawnSync, execFileSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NetnsLab, type LabHost } from './namespaces.js';
import { ROOT } from './paths.js';
import { captureOutput, type Proc } from './processes.js';
import { until } from './wait.js';

export interface MachineOptions {
  /** net.ipv4.ip_nonlocal_bind=1: execgate binds the VIP before the host holds it. */
  nonlocalBind?: boolean;
  /** More of the anchor's shell script, run after the host's own mounts (starts with `&&`). */
  extra?: string;
}

export class LabHosts {
  readonly net: NetnsLab;
  /** The run's directory, seen by every host. Not under /tmp: every machine mounts its own /tmp. */
  readonly dir: string;
  /** Same path on every machine: a tmpfs in each machine's own mount namespace. */
  readonly hostDir: string;
  private anchors = new Map<string, number>();

  constructor(
    prefix: string,
    private readonly log: (line: string) => void = () => {},
    tag = 'failover',
  ) {
    this.net = new NetnsLab(prefix);
    this.dir = mkdtempSync(join('/var/tmp', `execgate-${tag}-${prefix}-`));
    chmodSync(this.dir, 0o755);
    this.hostDir = join(this.dir, 'host');
    mkdirSync(this.hostDir, { recursive: true });
  }

  get prefix(): string {
    return this.net.prefix;
  }

  /** The switch and its bridge. */
  up(): void {
    this.net.up();
  }

  /** A host of the network only (the client): it shares the controller's files. */
  addHost(name: string, address: string): LabHost {
    return this.net.addHost(name, address);
  }

  /** A machine: a host with its anchor (waitAnchored() waits for its mounts). */
  addMachine(name: string, address: string, o: MachineOptions = {}): { host: LabHost; anchor: number } {
    const host = this.net.addHost(name, address);
    if (o.nonlocalBind) this.net.exec(host.ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_nonlocal_bind=1']);
    return { host, anchor: this.startAnchor(name, host.ns, o.extra) };
  }

  private startAnchor(host: string, ns: string, extra = ''): number {
    const h = this.hostDir;
    // etcd preallocates 64 MiB WAL files: its data gets its own tmpfs, so filling the
    // audit file system (the "unhealthy" scenario) does not touch etcd.
    // A checkout under /tmp (CI may clone there) would vanish under the host's own /tmp:
    // keep a bind of it aside and put it back at the same path.
    const underTmp = ROOT === '/tmp' || ROOT.startsWith('/tmp/');
    const keepRepo = underTmp ? `mkdir ${h}/.repo && mount --bind ${ROOT} ${h}/.repo && ` : '';
    const restoreRepo = underTmp ? ` && mkdir -p ${ROOT} && mount --bind ${h}/.repo ${ROOT}` : '';
    const script = `mount -t tmpfs -o size=100m,mode=0755 tmpfs ${h} && mkdir ${h}/etcd && mount -t tmpfs -o size=400m,mode=0700 tmpfs ${h}/etcd && ${keepRepo}mount -t tmpfs -o mode=1777 tmpfs /tmp${restoreRepo} ${extra} && echo anchored && exec sleep infinity`;
    const child = this.net.spawn(ns, ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script]);
    child.stderr!.on('data', (d: Buffer) => this.log(`[${host} anchor] ${d.toString().trim()}`));
    this.anchors.set(host, child.pid!);
    return child.pid!;
  }

  /** Every machine's mounts are in place. */
  async waitAnchored(): Promise<void> {
    for (const host of this.anchors.keys()) await until(`${host} anchor`, () => this.isAnchored(host), 10_000);
  }

  private isAnchored(host: string): boolean {
    try {
      return readFileSync(`/proc/${this.anchors.get(host)}/mountinfo`, 'utf8').includes(` ${this.hostDir} `);
    } catch {
      return false;
    }
  }

  anchor(host: string): number {
    const anchor = this.anchors.get(host);
    if (!anchor) throw new Error(`host ${host} has no anchor`);
    return anchor;
  }

  /** A file of a host, seen through its anchor's mount namespace. */
  hostPath(host: string, rel: string): string {
    return `/proc/${this.anchor(host)}/root${join(this.hostDir, rel)}`;
  }

  readHostFile(host: string, rel: string): string {
    try {
      return readFileSync(this.hostPath(host, rel), 'utf8');
    } catch {
      return '';
    }
  }

  private enter(host: string, argv: string[]): string[] {
    return ['-t', String(this.anchors.get(host)!), '-m', '-n', '--', ...argv];
  }

  /** A process on a host: inside its anchor's mount and network namespaces, own process group. */
  spawn(host: string, argv: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const child = spawn('nsenter', this.enter(host, argv), {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env },
    });
    return captureOutput(child);
  }

  /** A command on a host, to completion; throws when it fails. */
  exec(host: string, argv: string[]): string {
    return execFileSync('nsenter', this.enter(host, argv), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** A command on a host, to completion, with its status and output. */
  run(host: string, argv: string[]): SpawnSyncReturns<string> {
    return spawnSync('nsenter', this.enter(host, argv), { encoding: 'utf8' });
  }

  /** Host loss: every process of the host but its anchor killed (the disk survives). */
  killAllButAnchor(host: string, ns: string): void {
    const anchor = this.anchors.get(host);
    for (const pid of this.net.pids(ns)) {
      if (pid === anchor) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** Every process in our namespaces stopped, the namespaces deleted, the run's directory too unless kept; returns what is left. */
  async teardown(keepDir: boolean, graceMs = 2000): Promise<string[]> {
    await this.net.teardown(graceMs);
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
    return this.net.leftovers();
  }
}
