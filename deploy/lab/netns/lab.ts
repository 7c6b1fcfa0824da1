/**
 * The failover lab: real execgate, keepalived, etcd and haproxy on hosts made of
 * network namespaces (test/helpers/netns.ts), each gateway host with a private mount
 * namespace (its own /tmp and state directory), configs from `execgate render`.
 *
 * Host model: one "anchor" per host, `ip netns exec NS unshare --mount --propagation
 * private sh -c 'mount tmpfs…; exec sleep infinity'`, stands for the machine's disks;
 * every other process of the host enters the anchor's mount and network namespaces
 * (`nsenter -t ANCHOR -m -n`). "Host loss" kills every process but the anchor (the
 * disk survives a crash, as on a real machine). The controller reads a host's files
 * through /proc/ANCHOR/root.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, renameSync, chmodSync, mkdtempSync, readdirSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { NetnsLab, labPrerequisites, uniquePrefix } from '../../../test/helpers/netns.js';
import { jschClasspath as compileJschHarness } from '../../../test/helpers/jschBuild.js';
import { RUNDECK_CONNECT_TIMEOUT_MS } from './workload.js';

/**
 * The lease TTL unless --ttl says otherwise: execgate's own default. With 2 s (what CI
 * uses, for quick crash failovers) a new leader fenced itself in 2 of 5 vrrp-etcd
 * rollings: the connections a VIP drain held arrive together, and on 2 cores shared by
 * every lab process the lease keepalive came back 0.8-1.7 s late (docs/lab.md).
 */
export const LAB_DEFAULT_TTL_SECONDS = 5;

/** The lab's stand-in for a client keepalive: a JSch connection that received nothing this long is dead. */
const JSCH_DEAD_AFTER_MS = 12_000;

export type Topology = 'vrrp' | 'vrrp-etcd' | 'haproxy-etcd';
/** leadership.handover of the cluster file (etcd topologies only). */
export type Handover = 'fast' | 'strict';
export const HANDOVERS: Handover[] = ['fast', 'strict'];
export const TOPOLOGIES: Topology[] = ['vrrp', 'vrrp-etcd', 'haproxy-etcd'];

function findRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'src'))) return d;
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the execgate checkout');
    d = up;
  }
}
export const ROOT = findRoot();
export const CLI = join(ROOT, 'dist/src/cli.js');
export const DRIVER = join(ROOT, 'dist/deploy/lab/netns/driver.js');
const KEEPALIVED = '/usr/sbin/keepalived';
const HAPROXY = '/usr/sbin/haproxy';
const ETCD = '/usr/bin/etcd';
const JSCH_JAR = '/usr/share/java/jsch.jar';

export const VIP = '198.18.0.100';
export const CLIENT = { name: 'client', address: '198.18.0.10' };
export const LB = { name: 'lb', address: '198.18.0.20' };
export const GATEWAYS = [
  { name: 'gw1', address: '198.18.0.11', priority: 150 },
  { name: 'gw2', address: '198.18.0.12', priority: 140 },
  { name: 'gw3', address: '198.18.0.13', priority: 130 },
];
const SSH_PORT = 2222;
const HTTP_PORT = 9422;

export function prerequisites(topology: Topology): string[] {
  const extra = [KEEPALIVED, '/usr/bin/curl', '/usr/bin/unshare', '/usr/bin/nsenter', '/usr/sbin/bridge', JSCH_JAR, CLI, DRIVER];
  if (topology !== 'vrrp') extra.push(ETCD);
  if (topology === 'haproxy-etcd') extra.push(HAPROXY);
  const missing = labPrerequisites(extra);
  if (spawnSync('javac', ['-version']).status !== 0) missing.push('javac (default-jdk-headless)');
  return missing;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface RoleEvent {
  t: number;
  role: string;
  token: string | null;
}

interface Proc {
  child: ChildProcess;
  out: string;
  /** Set before the lab stops it on purpose (no supervisor action). */
  stopping: boolean;
}

export interface Gateway {
  name: string;
  address: string;
  priority: number;
  ns: string;
  anchor: number;
  execgate: Proc | null;
  /** Output of this host's earlier execgate processes (the last 2 MB), for --keep-dir. */
  execgateBefore: string;
  keepalived: Proc | null;
  etcd: Proc | null;
  /** Host lost: no supervisor restarts. */
  down: boolean;
  roles: RoleEvent[];
  /** Times execgate reported "execgate listening". */
  listening: number[];
}

export interface LabOptions {
  topology: Topology;
  prefix?: string;
  ttlSeconds?: number;
  marginSeconds?: number;
  /** etcd topologies: how a drain hands over (default fast). */
  handover?: Handover;
  log?: (line: string) => void;
}

/** One request/answer process (driver or JSch server) speaking JSON lines. */
class LineChannel {
  private buf = '';
  private waiting: Array<(line: string) => void> = [];
  private queued: string[] = [];
  constructor(readonly child: ChildProcess, onLine?: (line: string) => boolean) {
    child.stdout!.on('data', (d: Buffer) => {
      const parts = (this.buf + d.toString()).split('\n');
      this.buf = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.startsWith('{')) continue;
        if (onLine?.(line)) continue;
        const w = this.waiting.shift();
        if (w) w(line);
        else this.queued.push(line);
      }
    });
  }
  next(): Promise<string> {
    const q = this.queued.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise((r) => this.waiting.push(r));
  }
}

export class FailoverLab {
  readonly topology: Topology;
  readonly net: NetnsLab;
  readonly dir: string;
  /** Same path on every host: a tmpfs in each host's own mount namespace. */
  readonly hostDir: string;
  readonly token = randomBytes(16).toString('hex');
  readonly ttlSeconds: number;
  readonly marginSeconds: number;
  /** null in the vrrp topology, which has no handover setting. */
  readonly handover: Handover | null;
  readonly gateways: Gateway[] = [];
  readonly log: (line: string) => void;
  private anchors = new Map<string, number>();
  private driver: ChildProcess | null = null;
  private driverPending = new Map<number, (v: Record<string, unknown>) => void>();
  private driverSeq = 1;
  private jvm: { child: ChildProcess; ch: LineChannel } | null = null;
  private haproxy: Proc | null = null;
  private closed = false;
  private stderrTail: string[] = [];

  constructor(opts: LabOptions) {
    this.topology = opts.topology;
    this.net = new NetnsLab(opts.prefix ?? uniquePrefix('fl'));
    // Not under /tmp: every gateway host mounts its own /tmp.
    this.dir = mkdtempSync(join('/var/tmp', `execgate-failover-${this.net.prefix}-`));
    chmodSync(this.dir, 0o755);
    this.hostDir = join(this.dir, 'host');
    this.ttlSeconds = opts.ttlSeconds ?? LAB_DEFAULT_TTL_SECONDS;
    this.marginSeconds = opts.marginSeconds ?? 0.5;
    this.handover = this.etcd ? (opts.handover ?? 'fast') : null;
    this.log = opts.log ?? (() => {});
  }

  get prefix(): string {
    return this.net.prefix;
  }

  get etcd(): boolean {
    return this.topology !== 'vrrp';
  }

  /** Where the workload connects: the VIP, or HAProxy's address. */
  get target(): { host: string; port: number } {
    return this.topology === 'haproxy-etcd' ? { host: LB.address, port: 22 } : { host: VIP, port: 22 };
  }

  gw(name: string): Gateway {
    const g = this.gateways.find((x) => x.name === name);
    if (!g) throw new Error(`no gateway ${name}`);
    return g;
  }

  /** A file of a host, seen through its anchor's mount namespace. */
  hostPath(host: string, rel: string): string {
    const anchor = this.anchors.get(host);
    if (!anchor) throw new Error(`host ${host} has no anchor`);
    return `/proc/${anchor}/root${join(this.hostDir, rel)}`;
  }

  readHostFile(host: string, rel: string): string {
    try {
      return readFileSync(this.hostPath(host, rel), 'utf8');
    } catch {
      return '';
    }
  }

  // ---- build ---------------------------------------------------------------------

  private clusterFile(): string {
    const keys = join(this.dir, 'keys');
    const h = this.hostDir;
    const cluster = {
      cluster: 'failoverlab',
      vip: { address: VIP, prefixLength: 24, interface: 'eth0', sshPort: 22, bind: 'nonlocal' },
      vrrp: {
        version: 3,
        advertInterval: 0.2,
        scriptUser: 'root',
        keepalivedPidFile: join(h, 'keepalived.pid'),
        keepalivedVrrpPidFile: join(h, 'vrrp.pid'),
        configPath: join(h, 'keepalived.conf'),
        pollIntervalMs: 150,
        peerPollIntervalMs: 500,
      },
      leadership: {
        source: this.etcd ? 'etcd' : 'vrrp',
        ...(this.etcd
          ? {
              etcd: {
                endpoints: GATEWAYS.map((g) => `http://${g.address}:2379`),
                ttlSeconds: this.ttlSeconds,
                marginSeconds: this.marginSeconds,
                prefix: '/execgate-lab',
              },
            }
          : {}),
        ...(this.handover ? { handover: this.handover } : {}),
        onLeadershipLoss: 'terminate',
        // Above the workload's longest command (30 s): a drain waits for it.
        drainTimeoutSeconds: 40,
      },
      trackFile: join(h, 'keepalived.track'),
      notifyFifo: join(h, 'keepalived.fifo'),
      stateDir: join(h, 'state'),
      loadBalancers: this.topology === 'haproxy-etcd' ? [LB.address] : [],
      haproxy: { stateFile: join(h, 'haproxy-server-state'), configPath: join(h, 'haproxy.cfg') },
      gateway: {
        hostKeys: [join(keys, 'ssh_host_ed25519_key'), join(keys, 'ssh_host_rsa_key')],
        authorizedKeys: join(this.dir, 'authorized_keys'),
        // The lab's Rundeck (JSch) logs in as root with one shared file.
        runAs: { user: 'root', permitRoot: true },
        audit: { path: join(h, 'audit.jsonl') },
        exec: { killGraceSeconds: 2 },
        http: { token: this.token },
        ...(this.topology === 'haproxy-etcd' ? { proxyProtocol: { trustedProxies: [LB.address] } } : {}),
      },
      nodes: GATEWAYS.map((g) => ({ name: g.name, address: g.address, priority: g.priority, sshPort: SSH_PORT, httpPort: HTTP_PORT })),
    };
    const file = join(this.dir, 'cluster.yaml');
    writeFileSync(file, stringify(cluster));
    return file;
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

  /** A process on a host: inside its anchor's mount and network namespaces, own process group. */
  private hostSpawn(host: string, argv: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const anchor = this.anchors.get(host)!;
    const child = spawn('nsenter', ['-t', String(anchor), '-m', '-n', '--', ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env },
    });
    const proc: Proc = { child, out: '', stopping: false };
    const keep = (d: Buffer) => {
      proc.out += d.toString();
      if (proc.out.length > 400_000) proc.out = proc.out.slice(-200_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return proc;
  }

  hostExec(host: string, argv: string[]): string {
    const anchor = this.anchors.get(host)!;
    return execFileSync('nsenter', ['-t', String(anchor), '-m', '-n', '--', ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async build(): Promise<void> {
    const t0 = Date.now();
    mkdirSync(this.hostDir, { recursive: true });
    execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(this.dir, 'keys')]);
    const ed = join(this.dir, 'client_ed25519');
    const rsa = join(this.dir, 'client_rsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ed]);
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', rsa]);
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(`${ed}.pub`, 'utf8') + readFileSync(`${rsa}.pub`, 'utf8'));
    const clusterFile = this.clusterFile();
    const render = join(this.dir, 'render');
    mkdirSync(render, { recursive: true });
    for (const g of GATEWAYS) {
      execFileSync(process.execPath, [CLI, 'render', 'keepalived', '--cluster', clusterFile, '--node', g.name, '--out', join(render, `${g.name}-keepalived.conf`)]);
    }
    if (this.topology === 'haproxy-etcd') execFileSync(process.execPath, [CLI, 'render', 'haproxy', '--cluster', clusterFile, '--out', join(render, 'haproxy.cfg')]);

    this.net.up();
    const client = this.net.addHost(CLIENT.name, CLIENT.address);
    for (const spec of GATEWAYS) {
      const host = this.net.addHost(spec.name, spec.address);
      this.net.exec(host.ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_nonlocal_bind=1']);
      const anchor = this.startAnchor(spec.name, host.ns);
      this.gateways.push({ ...spec, ns: host.ns, anchor, execgate: null, execgateBefore: '', keepalived: null, etcd: null, down: false, roles: [], listening: [] });
    }
    if (this.topology === 'haproxy-etcd') {
      const lb = this.net.addHost(LB.name, LB.address);
      this.startAnchor(LB.name, lb.ns, '&& mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/haproxy');
    }
    for (const host of this.anchors.keys()) await until(`${host} anchor`, () => this.isAnchored(host), 10_000);
    for (const g of this.gateways) {
      const conf = join(render, `${g.name}-keepalived.conf`);
      const check = spawnSync('nsenter', ['-t', String(g.anchor), '-m', '-n', '--', KEEPALIVED, '-t', '-e', '-f', conf], { encoding: 'utf8' });
      if (check.status !== 0) throw new Error(`keepalived -t rejected ${conf} (${check.status}): ${check.stderr}`);
    }

    // The client host: the ssh2 driver and one long-lived JVM (Rundeck's JSch).
    this.driver = this.net.spawn(client.ns, [process.execPath, DRIVER, ed, 'root'], { stdio: ['pipe', 'pipe', 'pipe'] });
    new LineChannel(this.driver, (line) => {
      const m = JSON.parse(line) as { id: number };
      const r = this.driverPending.get(m.id);
      if (r) {
        this.driverPending.delete(m.id);
        r(m as Record<string, unknown>);
      }
      return true;
    });
    this.driver.stderr!.on('data', (d: Buffer) => this.log(`[driver] ${d.toString().trim()}`));
    this.driver.stdin!.on('error', () => {});
    const cp = jschClasspath();
    const jvm = this.net.spawn(client.ns, [
      'java', '-Xss512k', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', cp, 'RundeckStep',
      '--host', this.target.host, '--port', String(this.target.port), '--user', 'root', '--key', rsa, '--node', 'gw',
      '--connect-timeout', String(RUNDECK_CONNECT_TIMEOUT_MS), '--mode', 'server',
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    jvm.stderr!.on('data', (d: Buffer) => this.stderrTail.push(`[jvm] ${d.toString().trim()}`));
    jvm.stdin!.on('error', () => {});
    this.jvm = { child: jvm, ch: new LineChannel(jvm) };

    if (this.etcd) {
      for (const g of this.gateways) this.startEtcd(g, 'new');
      await until('etcd healthy', async () => {
        for (const g of this.gateways) {
          const r = await this.http(`http://${g.address}:2379/health`);
          if (r.status !== 200 || !String(r.body).includes('"true"')) return false;
        }
        return true;
      }, 30_000, 200);
    }
    for (const g of this.gateways) this.startExecgate(g);
    for (const g of this.gateways) await until(`${g.name} listening`, () => g.listening.length > 0, 30_000);
    for (const g of this.gateways) this.startKeepalived(g);
    if (this.topology === 'haproxy-etcd') {
      const cfg = join(render, 'haproxy.cfg');
      const lbAnchor = this.anchors.get(LB.name)!;
      const check = spawnSync('nsenter', ['-t', String(lbAnchor), '-m', '-n', '--', HAPROXY, '-c', '-q', '-f', cfg], { encoding: 'utf8' });
      if (check.status !== 0) throw new Error(`haproxy -c rejected ${cfg}: ${check.stdout}${check.stderr}`);
      // maxconn 20000 needs ~40k file descriptors, above this machine's hard limit (20000) which the lab
      // cannot raise: -n 4000 overrides maxconn; the rendered file is used unchanged.
      this.haproxy = this.hostSpawn(LB.name, [HAPROXY, '-db', '-n', '4000', '-f', cfg]);
    }
    await this.waitSteady(30_000);
    this.log(`lab ${this.topology} (${this.prefix}) up in ${Date.now() - t0} ms; leader ${this.leaders().join(',')}`);
  }

  private isAnchored(host: string): boolean {
    try {
      return readFileSync(`/proc/${this.anchors.get(host)}/mountinfo`, 'utf8').includes(` ${this.hostDir} `);
    } catch {
      return false;
    }
  }

  // ---- processes -------------------------------------------------------------------

  startEtcd(g: Gateway, state: 'new' | 'existing' = 'existing'): void {
    const peer = (x: { name: string; address: string }) => `${x.name}=http://${x.address}:2380`;
    g.etcd = this.hostSpawn(g.name, [
      ETCD, '--name', g.name, '--data-dir', join(this.hostDir, 'etcd'),
      '--listen-client-urls', `http://${g.address}:2379`, '--advertise-client-urls', `http://${g.address}:2379`,
      '--listen-peer-urls', `http://${g.address}:2380`, '--initial-advertise-peer-urls', `http://${g.address}:2380`,
      '--initial-cluster', GATEWAYS.map(peer).join(','), '--initial-cluster-state', state,
      '--initial-cluster-token', `lab-${this.prefix}`, '--heartbeat-interval', '100', '--election-timeout', '1000',
      '--log-level', 'warn',
    ]);
  }

  startKeepalived(g: Gateway): void {
    const h = this.hostDir;
    const proc = this.hostSpawn(g.name, [
      KEEPALIVED, '-n', '-l', '-D', '-P', '-f', join(this.dir, 'render', `${g.name}-keepalived.conf`),
      '-p', join(h, 'keepalived.pid'), '-r', join(h, 'vrrp.pid'), '-c', join(h, 'checkers.pid'),
    ]);
    g.keepalived = proc;
    // A supervisor: keepalived restarts when it dies (an orphaned VIP is cleared that way).
    proc.child.once('exit', () => {
      if (proc.stopping || g.down || this.closed || g.keepalived !== proc) return;
      setTimeout(() => {
        if (!g.down && !this.closed && g.keepalived === proc) this.startKeepalived(g);
      }, 200);
    });
  }

  startExecgate(g: Gateway): void {
    const proc = this.hostSpawn(
      g.name,
      [process.execPath, CLI, 'serve', '--cluster', join(this.dir, 'cluster.yaml'), '--node', g.name],
      { EXECGATE_CGROUP_PARENT: 'off' },
    );
    if (g.execgate) g.execgateBefore = (g.execgateBefore + g.execgate.out).slice(-2_000_000);
    g.execgate = proc;
    let partial = '';
    proc.child.stdout!.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.startsWith('{')) continue;
        let m: { msg?: string; role?: string; token?: string | null; time?: string | number };
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        const t = typeof m.time === 'string' ? Date.parse(m.time) : (m.time ?? Date.now());
        if (m.msg === 'leadership changed' && m.role) g.roles.push({ t, role: m.role, token: m.token ?? null });
        if (m.msg === 'execgate listening') g.listening.push(t);
      }
    });
    // The supervisor (what systemd's ExecStopPost + KillMode=control-group + Restart=always do):
    // on an unexpected exit write -254, kill what is left of its commands, restart.
    proc.child.once('exit', () => {
      g.roles.push({ t: Date.now(), role: 'dead', token: null });
      if (proc.stopping || this.closed || g.execgate !== proc) return;
      this.supervisorStepDown(g);
      if (g.down) return;
      setTimeout(() => {
        if (!g.down && !this.closed && g.execgate === proc) this.startExecgate(g);
      }, 100);
    });
  }

  /** -254 in the track file and SIGKILL to the dead gateway's commands. */
  supervisorStepDown(g: Gateway): void {
    try {
      const p = this.hostPath(g.name, 'keepalived.track');
      writeFileSync(`${p}.sup`, '-254\n');
      renameSync(`${p}.sup`, p);
    } catch (err) {
      this.log(`[${g.name}] supervisor could not write the track file: ${(err as Error).message}`);
    }
    for (const pid of this.commandPids(g)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** Processes on a gateway host that are commands execgate started (they carry EXECGATE_FENCING_TOKEN). */
  commandPids(g: Gateway): number[] {
    const out: number[] = [];
    for (const pid of this.net.pids(g.ns)) {
      try {
        if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').some((e) => e.startsWith('EXECGATE_FENCING_TOKEN='))) out.push(pid);
      } catch {
        // gone
      }
    }
    return out;
  }

  async stopProc(p: Proc | null, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<void> {
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

  /** SIGKILL of execgate alone (the supervisor then steps it down and restarts it). */
  crashExecgate(g: Gateway): void {
    process.kill(g.execgate!.child.pid!, 'SIGKILL');
  }

  /** Host loss: link down, every process of the host killed (keepalived's whole group, etcd, commands). */
  loseHost(g: Gateway): void {
    g.down = true;
    this.net.setPort(g.name, false);
    const anchor = this.anchors.get(g.name);
    for (const pid of this.net.pids(g.ns)) {
      if (pid === anchor) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** A host comes back (a reboot): link up, etcd, execgate, keepalived. */
  async restoreHost(g: Gateway): Promise<void> {
    this.net.setPort(g.name, true);
    g.down = false;
    if (this.etcd) this.startEtcd(g);
    const n = g.listening.length;
    this.startExecgate(g);
    await until(`${g.name} listening again`, () => g.listening.length > n, 30_000);
    this.startKeepalived(g);
  }

  /** A rolling-upgrade restart: SIGTERM (execgate writes -254 itself), start again. */
  async restartExecgate(g: Gateway): Promise<void> {
    await this.stopProc(g.execgate);
    const n = g.listening.length;
    this.startExecgate(g);
    await until(`${g.name} listening again`, () => g.listening.length > n, 30_000);
  }

  // ---- state -----------------------------------------------------------------------

  role(g: Gateway): string {
    return g.roles.at(-1)?.role ?? 'standby';
  }

  leaders(): string[] {
    return this.gateways.filter((g) => this.role(g) === 'leader').map((g) => g.name);
  }

  leader(): Gateway | null {
    const l = this.leaders();
    return l.length === 1 ? this.gw(l[0]!) : null;
  }

  vipHolders(): string[] {
    return this.gateways.filter((g) => this.net.addresses(g.ns).includes(VIP)).map((g) => g.name);
  }

  // ---- client side -----------------------------------------------------------------

  request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.driverSeq++;
    return new Promise((resolve) => {
      this.driverPending.set(id, resolve);
      this.driver!.stdin!.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  http(url: string, method = 'GET', timeoutMs = 2000): Promise<{ status: number; body?: string }> {
    return this.request({ op: 'http', url, method, token: this.token, timeoutMs }) as Promise<{ status: number; body?: string }>;
  }

  /** One Rundeck script step through the JVM (scp, chmod, exec, rm). */
  async jschStep(execid: string, script: string): Promise<{ ok: boolean; exit?: number; message?: string; ops: Array<Record<string, unknown>>; hung?: boolean }> {
    const jvm = this.jvm!;
    jvm.child.stdin!.write(`step\t${execid}\t${script}\t\tRD_JOB_EXECID=${execid}\n`);
    const answer = jvm.ch.next();
    let hung = false;
    // JSch as the harness configures it has no keepalive: when its gateway host dies
    // mid-command the idle connection never learns it (Rundeck's "silent black hole").
    // The lab does what a client keepalive would: a connection of the JVM's that has
    // received nothing for 12 s is killed. A connect still sending SYNs (a VIP drain
    // holds it) and a busy connection are left alone.
    const timer = setInterval(() => {
      if (this.killClientSockets(jvm.child.pid!, JSCH_DEAD_AFTER_MS) > 0) hung = true;
    }, 1000);
    const r = JSON.parse(await answer) as { ok: boolean; exit?: number; message?: string; ops: Array<Record<string, unknown>>; hung?: boolean };
    clearInterval(timer);
    r.hung = hung;
    return r;
  }

  /**
   * Kills the established TCP sockets of one client-host process that have received
   * nothing for `idleMs` (ss -K), like a keepalive timeout; returns how many.
   */
  killClientSockets(pid: number, idleMs: number): number {
    const ns = this.net.host(CLIENT.name).ns;
    const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-tnpiH', 'state', 'established'], { encoding: 'utf8' });
    const lines = r.stdout.split('\n');
    let killed = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (!line.includes(`pid=${pid},`)) continue;
      const info = lines[i + 1] ?? ''; // ss -i: the socket's details on the next, indented line
      const lastrcv = Number(/\blastrcv:(\d+)/.exec(info)?.[1] ?? 0);
      if (lastrcv < idleMs) continue;
      const local = line.trim().split(/\s+/)[2]; // with a state filter ss prints no State column
      const port = local?.split(':').at(-1);
      if (port) {
        spawnSync('ip', ['netns', 'exec', ns, 'ss', '-K', '-tn', 'sport', '=', `:${port}`]);
        killed++;
      }
    }
    return killed;
  }

  async drain(g: Gateway): Promise<{ status: number; body?: string }> {
    return this.http(`http://${g.address}:${HTTP_PORT}/admin/drain`, 'POST');
  }

  async undrain(g: Gateway): Promise<{ status: number; body?: string }> {
    return this.http(`http://${g.address}:${HTTP_PORT}/admin/undrain`, 'POST');
  }

  async drainPhase(g: Gateway): Promise<string | null> {
    const r = await this.http(`http://${g.address}:${HTTP_PORT}/status`);
    try {
      return (JSON.parse(r.body ?? '') as { drain: { phase: string } }).drain.phase;
    } catch {
      return null;
    }
  }

  /** A probe command through the target; resolves with the node that ran it, or null. */
  async probe(): Promise<string | null> {
    const r = (await this.request({ op: 'exec', ...this.target, command: 'echo "probe $EXECGATE_NODE"', timeoutMs: 5000 })) as { code: number | null; stdout?: string };
    const m = /^probe (\S+)/.exec(r.stdout ?? '');
    return r.code === 0 && m ? m[1]! : null;
  }

  /** Exactly one leader, every gateway running, every etcd member up, and a probe through the target works. */
  async waitSteady(timeoutMs = 20_000): Promise<string> {
    return until(
      'a steady lab (one leader, probe ok)',
      async () => {
        const l = this.leaders();
        if (l.length !== 1) return false;
        if (this.gateways.some((g) => g.down || !g.execgate || g.execgate.child.exitCode !== null)) return false;
        if (this.topology !== 'haproxy-etcd' && this.vipHolders().join() !== l[0]) return false;
        const who = await this.probe();
        return who === l[0] ? who : false;
      },
      timeoutMs,
      200,
    );
  }

  dumpTail(): string {
    const parts: string[] = [];
    for (const g of this.gateways) {
      parts.push(`--- ${g.name} execgate (tail)\n${(g.execgate?.out ?? '').split('\n').slice(-25).join('\n')}`);
      parts.push(`--- ${g.name} keepalived (tail)\n${(g.keepalived?.out ?? '').split('\n').slice(-12).join('\n')}`);
      if (g.etcd) parts.push(`--- ${g.name} etcd (tail)\n${g.etcd.out.split('\n').slice(-8).join('\n')}`);
    }
    if (this.haproxy) parts.push(`--- haproxy (tail)\n${this.haproxy.out.split('\n').slice(-10).join('\n')}`);
    parts.push(this.stderrTail.slice(-10).join('\n'));
    return parts.join('\n');
  }

  // ---- teardown --------------------------------------------------------------------

  /** Stops everything and deletes every namespace of this run; safe to call twice and after a partial build. */
  /** The output of every process the lab started, for a run kept with --keep-dir. */
  private writeLogs(): void {
    const logs = join(this.dir, 'logs');
    mkdirSync(logs, { recursive: true });
    for (const g of this.gateways) {
      writeFileSync(join(logs, `${g.name}-execgate.log`), g.execgateBefore + (g.execgate?.out ?? ''));
      if (g.keepalived) writeFileSync(join(logs, `${g.name}-keepalived.log`), g.keepalived.out);
      if (g.etcd) writeFileSync(join(logs, `${g.name}-etcd.log`), g.etcd.out);
    }
    if (this.haproxy) writeFileSync(join(logs, 'haproxy.log'), this.haproxy.out);
  }

  /** The kept run's logs/ directory (created). */
  logsDir(): string {
    const logs = join(this.dir, 'logs');
    mkdirSync(logs, { recursive: true });
    return logs;
  }

  /** Each gateway's ledger and audit files, copied out of its tmpfs before teardown unmounts it. */
  private copyHostRecords(): void {
    const logs = this.logsDir();
    for (const g of this.gateways) {
      try {
        const names = readdirSync(this.hostPath(g.name, '.')).filter((n) => n === 'ledger' || n.startsWith('audit.jsonl'));
        for (const n of names) copyFileSync(this.hostPath(g.name, n), join(logs, `${g.name}-${n}`));
      } catch (err) {
        this.log(`[${g.name}] could not keep its ledger and audit files: ${(err as Error).message}`);
      }
    }
  }

  async teardown(keepDir = false): Promise<string[]> {
    if (this.closed) return this.net.leftovers();
    this.closed = true;
    try {
      this.net.heal();
    } catch {
      // half-made partition: the namespaces go anyway
    }
    this.driver?.stdin?.end();
    this.jvm?.child.stdin?.end();
    for (const g of this.gateways) if (g.execgate) g.execgate.stopping = true;
    for (const g of this.gateways) if (g.keepalived) g.keepalived.stopping = true;
    if (keepDir) this.copyHostRecords();
    await this.net.teardown(2000);
    if (keepDir) this.writeLogs();
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
    return this.net.leftovers();
  }
}

/** The JSch harness's classpath, compiled once per version of its source. */
export const jschClasspath = (): string => compileJschHarness(ROOT);

/** Namespaces left by this prefix (for the interrupted-run test and a final check). */
export function namespacesWithPrefix(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n && n.startsWith(`${prefix}-`));
}

