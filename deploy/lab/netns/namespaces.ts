import { spawn, spawnSync, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/**
 * Hosts in network namespaces on one machine, following the lab network rules:
 * - every namespace is created here, named `<prefix>-<host>` with a unique per-run prefix;
 * - one switch namespace holds a bridge; each host's veth is created directly between
 *   the switch namespace and the host namespace, so nothing appears in the default one;
 * - addresses only from 198.18.0.0/15; IPv6 disabled in every lab namespace;
 * - teardown survives partial setup: for each of OUR namespaces, TERM the processes in
 *   it (`ip netns pids`), wait, KILL, then delete it. Nothing is ever killed by name.
 */
export interface LabHost {
  /** Short name, e.g. "gw1". */
  name: string;
  /** Namespace name. */
  ns: string;
  address: string;
  /** The host's interface, always eth0. */
  ifname: string;
}

const BENCHMARK_NET = /^198\.1[89]\.\d{1,3}\.\d{1,3}$/;

function ip(args: string[], allowFail = false): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`ip ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** What is missing to run the lab here ([] when everything is present). */
export function labPrerequisites(extra: string[] = []): string[] {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux');
  if (process.getuid?.() !== 0) missing.push('root (network namespaces need CAP_SYS_ADMIN)');
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (list.error || list.status !== 0) missing.push(`ip netns (${list.error?.message ?? list.stderr.trim()})`);
  for (const bin of extra) if (!existsSync(bin)) missing.push(bin);
  return missing;
}

export function uniquePrefix(tag = 'eg'): string {
  return `${tag}${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
}

export class NetnsLab {
  readonly switchNs: string;
  readonly hosts = new Map<string, LabHost>();
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(
    readonly prefix: string = uniquePrefix(),
    readonly prefixLength = 24,
  ) {
    this.switchNs = `${prefix}-sw`;
  }

  private existing(): Set<string> {
    return new Set(
      ip(['netns', 'list'])
        .split('\n')
        .map((l) => l.split(' ')[0]!)
        .filter(Boolean),
    );
  }

  private addNamespace(ns: string): void {
    if (!this.namespaces.includes(ns)) this.namespaces.push(ns); // record first: teardown covers a half-made one
    if (!this.existing().has(ns)) ip(['netns', 'add', ns]);
    this.exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  /** The switch namespace and its bridge (idempotent). */
  up(): void {
    this.addNamespace(this.switchNs);
    if (!ip(['-n', this.switchNs, 'link', 'show', 'br0'], true).includes('br0')) {
      ip(['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
    }
    ip(['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
  }

  /** A host namespace with eth0 on the switch (idempotent: completes an interrupted setup). */
  addHost(name: string, address: string): LabHost {
    if (!BENCHMARK_NET.test(address)) throw new Error(`${address}: lab addresses come from 198.18.0.0/15 only`);
    if (`p-${name}`.length > 15) throw new Error(`host name ${name} too long for an interface name`);
    const ns = `${this.prefix}-${name}`;
    this.addNamespace(ns);
    const port = `p-${name}`;
    if (!ip(['-n', ns, 'link', 'show', 'eth0'], true).includes('eth0')) {
      ip(['-n', this.switchNs, 'link', 'del', port], true); // a half-made pair from an interrupted run
      ip(['-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    }
    ip(['-n', this.switchNs, 'link', 'set', port, 'master', 'br0']);
    ip(['-n', this.switchNs, 'link', 'set', port, 'up']);
    if (!ip(['-n', ns, '-o', '-4', 'addr', 'show', 'dev', 'eth0']).includes(`${address}/`)) {
      ip(['-n', ns, 'addr', 'add', `${address}/${this.prefixLength}`, 'dev', 'eth0']);
    }
    ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    const host = { name, ns, address, ifname: 'eth0' };
    this.hosts.set(name, host);
    return host;
  }

  host(name: string): LabHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  }

  /** Runs a command inside a namespace to completion. */
  exec(ns: string, argv: string[]): string {
    return execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Starts a long-running process inside a namespace, in its own process group (detached). */
  spawn(ns: string, argv: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** IPv4 addresses on a host's interface. */
  addresses(ns: string, ifname = 'eth0'): string[] {
    return ip(['-n', ns, '-o', '-4', 'addr', 'show', 'dev', ifname], true)
      .split('\n')
      .map((l) => /inet (\S+)\//.exec(l)?.[1])
      .filter((a): a is string => Boolean(a));
  }

  /** Cuts a host off the switch (link down on its switch port). */
  setPort(name: string, up: boolean): void {
    ip(['-n', this.switchNs, 'link', 'set', `p-${name}`, up ? 'up' : 'down']);
  }

  /** Bridge port isolation: isolated ports cannot reach each other (a partition between gateways). */
  isolate(name: string, on: boolean): void {
    execFileSync('bridge', ['-n', this.switchNs, 'link', 'set', 'dev', `p-${name}`, 'isolated', on ? 'on' : 'off']);
  }

  /**
   * A partition of one host from `others` while every host still reaches the rest
   * (client, load balancer): `others` move to a second bridge (br1) joined to br0 by an
   * uplink veth pair; on br0 the isolated host's port and the uplink are isolated
   * ports, which cannot reach each other but still reach every other port. Idempotent;
   * heal() undoes it.
   */
  partition(alone: string, others: string[]): void {
    const sw = this.switchNs;
    if (!ip(['-n', sw, 'link', 'show', 'br1'], true).includes('br1')) {
      ip(['-n', sw, 'link', 'add', 'br1', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
    }
    if (!ip(['-n', sw, 'link', 'show', 'up0'], true).includes('up0')) {
      ip(['-n', sw, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1']);
    }
    ip(['-n', sw, 'link', 'set', 'up0', 'master', 'br0']);
    ip(['-n', sw, 'link', 'set', 'up1', 'master', 'br1']);
    for (const dev of ['br1', 'up0', 'up1']) ip(['-n', sw, 'link', 'set', dev, 'up']);
    for (const name of others) ip(['-n', sw, 'link', 'set', `p-${name}`, 'master', 'br1']);
    for (const dev of [`p-${alone}`, 'up0']) execFileSync('bridge', ['-n', sw, 'link', 'set', 'dev', dev, 'isolated', 'on']);
    this.partitioned = { alone, others };
  }

  /** Undoes partition(): every host port back on br0, none isolated. */
  heal(): void {
    const p = this.partitioned;
    if (!p) return;
    const sw = this.switchNs;
    for (const name of p.others) ip(['-n', sw, 'link', 'set', `p-${name}`, 'master', 'br0']);
    execFileSync('bridge', ['-n', sw, 'link', 'set', 'dev', `p-${p.alone}`, 'isolated', 'off']);
    ip(['-n', sw, 'link', 'set', 'up0', 'nomaster'], true);
    this.partitioned = null;
  }

  private partitioned: { alone: string; others: string[] } | null = null;

  /** Processes inside one of our namespaces. */
  pids(ns: string): number[] {
    return ip(['netns', 'pids', ns], true)
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  }

  /** TERM, wait, KILL every process in our namespaces, then delete them (safe after a partial setup). */
  async teardown(graceMs = 3000): Promise<void> {
    const present = this.existing();
    const ours = this.namespaces.filter((ns) => present.has(ns)).reverse();
    const signal = (sig: NodeJS.Signals) => {
      for (const ns of ours) {
        for (const pid of this.pids(ns)) {
          try {
            process.kill(pid, sig);
          } catch {
            // already gone
          }
        }
      }
      for (const child of this.children) {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      }
    };
    signal('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && ours.some((ns) => this.pids(ns).length > 0)) await new Promise((r) => setTimeout(r, 50));
    signal('SIGKILL');
    for (let i = 0; i < 40 && ours.some((ns) => this.pids(ns).length > 0); i++) await new Promise((r) => setTimeout(r, 50));
    for (const ns of ours) ip(['netns', 'del', ns], true);
    this.hosts.clear();
  }

  /** Namespaces of this run still present (should be [] after teardown). */
  leftovers(): string[] {
    const present = this.existing();
    return this.namespaces.filter((ns) => present.has(ns));
  }
}

/** Namespaces left by this prefix (for the interrupted-run test and a final check). */
export function namespacesWithPrefix(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n && n.startsWith(`${prefix}-`));
}
