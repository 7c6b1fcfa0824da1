/**
 * The failover lab: real execgate, keepalived, etcd and haproxy on hosts made of
 * network namespaces, each gateway host with a private mount namespace (its own /tmp
 * and state directory), configs from `execgate render`. Its parts: hosts.ts (the hosts
 * and their anchors), clusterFile.ts (keys, cluster file, rendered configs),
 * supervisor.ts (each gateway's processes and their restarts), client.ts (the client
 * host's ssh2 driver and JSch JVM), records.ts (tails and --keep-dir logs). This file
 * builds them into one lab, observes it and tears it down.
 */
import { randomBytes } from 'node:crypto';
import { makeClusterCerts } from '../../../src/certs/make.js';
import type { EtcdConnectionSettings } from '../../../src/config/etcdConnection.js';
import { loadClusterFile } from '../../../src/config/clusterLoad.js';
import { LabClient, type HttpAnswer } from './client.js';
import { clusterFilePath, renderConfigs, renderedHaproxy, writeClusterFile, writeKeys } from './clusterFile.js';
import { INTRUDER_USER, etcdConnection, etcdEndpoint, labCerts, pkiDir, rootConnection } from './etcdAccess.js';
import { LabHosts } from './hosts.js';
import { uniquePrefix, type NetnsLab } from './namespaces.js';
import { CLI, HAPROXY } from './paths.js';
import type { Proc } from './processes.js';
import { copyHostRecords, dumpTail, logsDir, writeLogs } from './records.js';
import { Supervisor, newGateway, type Gateway } from './supervisor.js';
import { CLIENT, GATEWAYS, HTTP_PORT, LAB_DEFAULT_TTL_SECONDS, LB, VIP, targetOf, type Handover, type Target, type Topology } from './topology.js';
import { until } from './wait.js';

/** A key as the driver returns it (revisions and version as decimal strings). */
export interface EtcdKv {
  key: string;
  value: string;
  createRevision: string;
  modRevision: string;
  version: string;
  lease: string;
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

export class FailoverLab {
  readonly topology: Topology;
  readonly hosts: LabHosts;
  readonly net: NetnsLab;
  readonly dir: string;
  /** Same path on every host: a tmpfs in each host's own mount namespace. */
  readonly hostDir: string;
  readonly token = randomBytes(16).toString('hex');
  /** The etcd user without a role that the intruder scenario logs in as (made during the build). */
  readonly intruderPassword = randomBytes(16).toString('hex');
  readonly ttlSeconds: number;
  readonly marginSeconds: number;
  /** null in the vrrp topology, which has no handover setting. */
  readonly handover: Handover | null;
  readonly gateways: Gateway[] = [];
  readonly log: (line: string) => void;
  readonly supervisor: Supervisor;
  readonly client: LabClient;
  private haproxy: Proc | null = null;
  private closed = false;

  constructor(opts: LabOptions) {
    this.topology = opts.topology;
    this.log = opts.log ?? (() => {});
    this.hosts = new LabHosts(opts.prefix ?? uniquePrefix('fl'), this.log);
    this.net = this.hosts.net;
    this.dir = this.hosts.dir;
    this.hostDir = this.hosts.hostDir;
    this.ttlSeconds = opts.ttlSeconds ?? LAB_DEFAULT_TTL_SECONDS;
    this.marginSeconds = opts.marginSeconds ?? 0.5;
    this.handover = this.etcd ? (opts.handover ?? 'fast') : null;
    this.supervisor = new Supervisor(this.hosts, {
      dir: this.dir,
      etcd: this.etcd ? { members: GATEWAYS, clusterToken: `lab-${this.prefix}` } : null,
      supervise: true,
      execgateEnv: { EXECGATE_CGROUP_PARENT: 'off' },
      log: this.log,
    });
    this.client = new LabClient(this.net, targetOf(this.topology), this.token, this.log);
  }

  get prefix(): string {
    return this.net.prefix;
  }

  get etcd(): boolean {
    return this.topology !== 'vrrp';
  }

  /** Where the workload connects: the VIP, or HAProxy's address. */
  get target(): Target {
    return this.client.target;
  }

  gw(name: string): Gateway {
    const g = this.gateways.find((x) => x.name === name);
    if (!g) throw new Error(`no gateway ${name}`);
    return g;
  }

  /** A file of a host, seen through its anchor's mount namespace. */
  hostPath(host: string, rel: string): string {
    return this.hosts.hostPath(host, rel);
  }

  readHostFile(host: string, rel: string): string {
    return this.hosts.readHostFile(host, rel);
  }

  hostExec(host: string, argv: string[]): string {
    return this.hosts.exec(host, argv);
  }

  // ---- build ---------------------------------------------------------------------

  async build(): Promise<void> {
    const t0 = Date.now();
    const keys = writeKeys(this.dir);
    writeClusterFile({
      topology: this.topology,
      dir: this.dir,
      hostDir: this.hostDir,
      nodes: GATEWAYS,
      token: this.token,
      ttlSeconds: this.ttlSeconds,
      marginSeconds: this.marginSeconds,
      handover: this.handover,
    });
    renderConfigs(this.dir, this.topology, GATEWAYS);
    // The CA, each member's and each gateway's certificate and key, the etcd passwords.
    if (this.etcd) makeClusterCerts(loadClusterFile(clusterFilePath(this.dir)), pkiDir(this.dir));

    this.hosts.up();
    const client = this.hosts.addHost(CLIENT.name, CLIENT.address);
    for (const spec of GATEWAYS) {
      const { host, anchor } = this.hosts.addMachine(spec.name, spec.address, { nonlocalBind: true });
      this.gateways.push(newGateway(spec, host.ns, anchor));
    }
    if (this.topology === 'haproxy-etcd') this.hosts.addMachine(LB.name, LB.address, { extra: '&& mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/haproxy' });
    await this.hosts.waitAnchored();
    for (const g of this.gateways) this.supervisor.checkKeepalived(g);

    // The client host: the ssh2 driver and one long-lived JVM (Rundeck's JSch).
    this.client.start(client.ns, keys);

    if (this.etcd) {
      for (const g of this.gateways) this.supervisor.startEtcd(g, 'new');
      await until(
        'etcd healthy',
        async () => {
          for (const g of this.gateways) if (!(await this.etcdHealthy(g))) return false;
          return true;
        },
        30_000,
        200,
      );
      this.setUpEtcdAuth();
      await this.addIntruderUser();
    }
    for (const g of this.gateways) this.supervisor.startExecgate(g);
    for (const g of this.gateways) await until(`${g.name} listening`, () => g.listening.length > 0, 30_000);
    for (const g of this.gateways) this.supervisor.startKeepalived(g);
    if (this.topology === 'haproxy-etcd') {
      const cfg = renderedHaproxy(this.dir);
      const check = this.hosts.run(LB.name, [HAPROXY, '-c', '-q', '-f', cfg]);
      if (check.status !== 0) throw new Error(`haproxy -c rejected ${cfg}: ${check.stdout}${check.stderr}`);
      // maxconn 20000 needs ~40k file descriptors, above this machine's hard limit (20000) which the lab
      // cannot raise: -n 4000 overrides maxconn; the rendered file is used unchanged.
      this.haproxy = this.hosts.spawn(LB.name, [HAPROXY, '-db', '-n', '4000', '-f', cfg]);
    }
    await this.waitSteady(30_000);
    this.log(`lab ${this.topology} (${this.prefix}) up in ${Date.now() - t0} ms; leader ${this.leaders().join(',')}`);
  }

  // ---- etcd: TLS and authentication (etcdAccess.ts) ----------------------------------

  /** GET /health of one member over mutual TLS (gw1's client certificate). */
  async etcdHealthy(g: Gateway): Promise<boolean> {
    const f = labCerts(this.dir);
    const r = (await this.request({ op: 'https', url: `${etcdEndpoint(g.address)}/health`, method: 'GET', ca: f.ca, ...f.gateway('gw1'), timeoutMs: 2000 })) as unknown as HttpAnswer;
    return r.status === 200 && String(r.body).includes('"true"');
  }

  /** `execgate etcd-setup --apply` once, on gw1, as an operator would: root, the cluster's role and user, auth on. */
  private setUpEtcdAuth(): void {
    const argv = [process.execPath, CLI, 'etcd-setup', '--cluster', clusterFilePath(this.dir), '--node', 'gw1', '--apply', '--root-password-file', labCerts(this.dir).rootPassword];
    const r = this.hosts.run('gw1', argv);
    this.log(`etcd-setup (${r.status}): ${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-4).join(' | ')}`);
    if (r.status !== 0) throw new Error(`execgate etcd-setup failed (${r.status}): ${r.stdout}${r.stderr}`);
  }

  /** A user without any role, for the intruder scenario to log in as. */
  private async addIntruderUser(): Promise<void> {
    const r = await this.etcdCall('/v3/auth/user/add', { name: INTRUDER_USER, password: this.intruderPassword }, { as: 'root' });
    if (!r.ok) throw new Error(`could not add etcd user ${INTRUDER_USER}: ${r.error}`);
  }

  /**
   * One call through execgate's own etcd client (mutual TLS, login) from the client host: as
   * the execgate user with gw1's certificate (what the lab observes with), or as root.
   */
  async etcdCall(path: string, body: unknown, o: { as?: 'execgate' | 'root'; endpoints?: string[]; timeoutMs?: number } = {}): Promise<{ ok: boolean; result?: unknown; error?: string }> {
    const base = o.as === 'root' ? rootConnection(this.dir, GATEWAYS) : etcdConnection(this.dir, GATEWAYS);
    const settings: EtcdConnectionSettings = o.endpoints ? { ...base, endpoints: o.endpoints } : base;
    return (await this.request({ op: 'etcd', settings, node: 'gw1', call: path, request: body, timeoutMs: o.timeoutMs ?? 2000 })) as { ok: boolean; result?: unknown; error?: string };
  }

  /** Every key under a prefix, read as the execgate user (revisions as decimal strings). */
  async etcdRange(prefix: string): Promise<{ ok: boolean; result?: { revision: string; kvs: EtcdKv[] }; error?: string }> {
    return (await this.request({ op: 'etcd', settings: etcdConnection(this.dir, GATEWAYS), node: 'gw1', range: prefix, timeoutMs: 2000 })) as {
      ok: boolean;
      result?: { revision: string; kvs: EtcdKv[] };
      error?: string;
    };
  }

  // ---- processes (supervisor.ts) ---------------------------------------------------

  startEtcd(g: Gateway, state: 'new' | 'existing' = 'existing'): void {
    this.supervisor.startEtcd(g, state);
  }

  /** Processes on a gateway host that are commands execgate started. */
  commandPids(g: Gateway): number[] {
    return this.supervisor.commandPids(g);
  }

  stopProc(p: Proc | null, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<void> {
    return this.supervisor.stopProc(p, signal, timeoutMs);
  }

  /** SIGKILL of execgate alone (the supervisor then steps it down and restarts it). */
  crashExecgate(g: Gateway): void {
    this.supervisor.crashExecgate(g);
  }

  /** Host loss: link down, every process of the host killed. */
  loseHost(g: Gateway): void {
    this.supervisor.loseHost(g);
  }

  /** A host comes back (a reboot): link up, etcd, execgate, keepalived. */
  restoreHost(g: Gateway): Promise<void> {
    return this.supervisor.restoreHost(g);
  }

  /** A rolling-upgrade restart: SIGTERM (execgate writes -254 itself), start again. */
  restartExecgate(g: Gateway): Promise<void> {
    return this.supervisor.restartExecgate(g);
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

  // ---- client side (client.ts) -----------------------------------------------------

  request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.client.request(req);
  }

  async drain(g: Gateway): Promise<HttpAnswer> {
    return this.client.http(`http://${g.address}:${HTTP_PORT}/admin/drain`, 'POST');
  }

  async undrain(g: Gateway): Promise<HttpAnswer> {
    return this.client.http(`http://${g.address}:${HTTP_PORT}/admin/undrain`, 'POST');
  }

  async drainPhase(g: Gateway): Promise<string | null> {
    const r = await this.client.http(`http://${g.address}:${HTTP_PORT}/status`);
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

  // ---- records and teardown --------------------------------------------------------

  dumpTail(): string {
    return dumpTail(this.gateways, this.haproxy, this.client.stderrTail);
  }

  /** The kept run's logs/ directory (created). */
  logsDir(): string {
    return logsDir(this.dir);
  }

  /** Stops everything and deletes every namespace of this run; safe to call twice and after a partial build. */
  async teardown(keepDir = false): Promise<string[]> {
    if (this.closed) return this.net.leftovers();
    this.closed = true;
    try {
      this.net.heal();
    } catch {
      // half-made partition: the namespaces go anyway
    }
    this.client.close();
    this.supervisor.close(this.gateways);
    if (keepDir) copyHostRecords(this.hosts, this.gateways, this.log);
    const left = await this.hosts.teardown(keepDir, 2000);
    if (keepDir) writeLogs(this.dir, this.gateways, this.haproxy);
    return left;
  }
}
