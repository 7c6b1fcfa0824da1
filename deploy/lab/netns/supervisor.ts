/**
 * The processes of each gateway machine (etcd, execgate, keepalived), started on its host
 * (hosts.ts), and in the failover lab supervised the way systemd would: a dead execgate is
 * stepped down and restarted, a dead keepalived restarted. Host loss and return, crash and
 * rolling restart are done here too.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterFilePath, renderedKeepalived } from './clusterFile.js';
import { ETCD_CLIENT_PORT, ETCD_PEER_PORT, memberTlsFlags } from './etcdAccess.js';
import type { LabHosts } from './hosts.js';
import { CLI, ETCD, KEEPALIVED } from './paths.js';
import { stopProc, type Proc } from './processes.js';
import type { NodeSpec } from './topology.js';
import { until } from './wait.js';

export interface RoleEvent {
  t: number;
  role: string;
  token: string | null;
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

export function newGateway(spec: NodeSpec, ns: string, anchor: number): Gateway {
  return { ...spec, ns, anchor, execgate: null, execgateBefore: '', keepalived: null, etcd: null, down: false, roles: [], listening: [] };
}

export interface SupervisorOptions {
  /** The run's directory: cluster.yaml and render/ (clusterFile.ts). */
  dir: string;
  /** etcd topologies: the etcd cluster's members and its --initial-cluster-token (a returning host starts etcd too). */
  etcd: { members: NodeSpec[]; clusterToken: string } | null;
  /** Restart what dies unexpectedly (systemd's part); off: processes run until stopped. */
  supervise: boolean;
  /** execgate's environment on top of the controller's. */
  execgateEnv?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

export class Supervisor {
  private closed = false;

  constructor(
    private readonly hosts: LabHosts,
    private readonly o: SupervisorOptions,
  ) {}

  /** `keepalived -t` accepts the host's rendered configuration. */
  checkKeepalived(g: Gateway): void {
    const conf = renderedKeepalived(this.o.dir, g.name);
    const check = this.hosts.run(g.name, [KEEPALIVED, '-t', '-e', '-f', conf]);
    if (check.status !== 0) throw new Error(`keepalived -t rejected ${conf} (${check.status}): ${check.stderr}`);
  }

  /** An etcd member with mutual TLS on its client and peer ports (the run's certificates, etcdAccess.ts). */
  startEtcd(g: Gateway, state: 'new' | 'existing' = 'existing'): void {
    const etcd = this.o.etcd;
    if (!etcd) throw new Error('this lab runs no etcd');
    const client = `https://${g.address}:${ETCD_CLIENT_PORT}`;
    const peerUrl = `https://${g.address}:${ETCD_PEER_PORT}`;
    const peer = (x: { name: string; address: string }) => `${x.name}=https://${x.address}:${ETCD_PEER_PORT}`;
    g.etcd = this.hosts.spawn(g.name, [
      ETCD,
      '--name',
      g.name,
      '--data-dir',
      join(this.hosts.hostDir, 'etcd'),
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      ...memberTlsFlags(this.o.dir, g.name),
      '--initial-cluster',
      etcd.members.map(peer).join(','),
      '--initial-cluster-state',
      state,
      '--initial-cluster-token',
      etcd.clusterToken,
      '--heartbeat-interval',
      '100',
      '--election-timeout',
      '1000',
      '--log-level',
      'warn',
    ]);
  }

  startKeepalived(g: Gateway): void {
    const h = this.hosts.hostDir;
    const proc = this.hosts.spawn(g.name, [
      KEEPALIVED,
      '-n',
      '-l',
      '-D',
      '-P',
      '-f',
      renderedKeepalived(this.o.dir, g.name),
      '-p',
      join(h, 'keepalived.pid'),
      '-r',
      join(h, 'vrrp.pid'),
      '-c',
      join(h, 'checkers.pid'),
    ]);
    g.keepalived = proc;
    // A supervisor: keepalived restarts when it dies (an orphaned VIP is cleared that way).
    proc.child.once('exit', () => {
      if (!this.o.supervise || proc.stopping || g.down || this.closed || g.keepalived !== proc) return;
      setTimeout(() => {
        if (!g.down && !this.closed && g.keepalived === proc) this.startKeepalived(g);
      }, 200);
    });
  }

  startExecgate(g: Gateway): void {
    const proc = this.hosts.spawn(g.name, [process.execPath, CLI, 'serve', '--cluster', clusterFilePath(this.o.dir), '--node', g.name], this.o.execgateEnv ?? {});
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
      if (!this.o.supervise || proc.stopping || this.closed || g.execgate !== proc) return;
      this.stepDown(g);
      if (g.down) return;
      setTimeout(() => {
        if (!g.down && !this.closed && g.execgate === proc) this.startExecgate(g);
      }, 100);
    });
  }

  /** -254 in the track file and SIGKILL to the dead gateway's commands. */
  stepDown(g: Gateway): void {
    try {
      const p = this.hosts.hostPath(g.name, 'keepalived.track');
      writeFileSync(`${p}.sup`, '-254\n');
      renameSync(`${p}.sup`, p);
    } catch (err) {
      this.o.log(`[${g.name}] supervisor could not write the track file: ${(err as Error).message}`);
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
    for (const pid of this.hosts.net.pids(g.ns)) {
      try {
        if (
          readFileSync(`/proc/${pid}/environ`, 'latin1')
            .split('\0')
            .some((e) => e.startsWith('EXECGATE_FENCING_TOKEN='))
        )
          out.push(pid);
      } catch {
        // gone
      }
    }
    return out;
  }

  stopProc(p: Proc | null, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<void> {
    return stopProc(p, signal, timeoutMs);
  }

  /** SIGKILL of execgate alone (the supervisor then steps it down and restarts it). */
  crashExecgate(g: Gateway): void {
    process.kill(g.execgate!.child.pid!, 'SIGKILL');
  }

  /** Host loss: link down, every process of the host killed (keepalived's whole group, etcd, commands). */
  loseHost(g: Gateway): void {
    g.down = true;
    this.hosts.net.setPort(g.name, false);
    this.hosts.killAllButAnchor(g.name, g.ns);
  }

  /** A host comes back (a reboot): link up, etcd, execgate, keepalived. */
  async restoreHost(g: Gateway): Promise<void> {
    this.hosts.net.setPort(g.name, true);
    g.down = false;
    if (this.o.etcd) this.startEtcd(g);
    const n = g.listening.length;
    this.startExecgate(g);
    await until(`${g.name} listening again`, () => g.listening.length > n, 30_000);
    this.startKeepalived(g);
  }

  /** A rolling-upgrade restart: SIGTERM (execgate writes -254 itself), start again. */
  async restartExecgate(g: Gateway): Promise<void> {
    await stopProc(g.execgate);
    const n = g.listening.length;
    this.startExecgate(g);
    await until(`${g.name} listening again`, () => g.listening.length > n, 30_000);
  }

  /** From now on nothing restarts, and execgate and keepalived count as stopped on purpose. */
  close(gateways: Gateway[]): void {
    this.closed = true;
    for (const g of gateways) if (g.execgate) g.execgate.stopping = true;
    for (const g of gateways) if (g.keepalived) g.keepalived.stopping = true;
  }
}
