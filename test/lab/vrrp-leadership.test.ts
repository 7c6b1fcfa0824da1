import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sshArgs } from '../helpers/clients.js';
import { renderConfigs, writeClusterFile, writeKeys } from '../../deploy/lab/netns/clusterFile.js';
import { LabHosts } from '../../deploy/lab/netns/hosts.js';
import { labPrerequisites, uniquePrefix } from '../../deploy/lab/netns/namespaces.js';
import { CLI, KEEPALIVED } from '../../deploy/lab/netns/paths.js';
import { Supervisor, newGateway, type Gateway } from '../../deploy/lab/netns/supervisor.js';
import { CLIENT, VIP, type NodeSpec } from '../../deploy/lab/netns/topology.js';
import { sleep, until } from '../../deploy/lab/netns/wait.js';

/**
 * vrrp leadership against real keepalived in network namespaces, on the failover lab's
 * hosts (deploy/lab/netns): a client host and two gateway machines on a bridge, each
 * gateway running keepalived with what `execgate render keepalived` makes of the lab's
 * cluster file (VRRPv3 unicast, advert 0.2 s, track_file, notify_fifo) and
 * `execgate serve --cluster --node`, both started by the lab's supervisor with its
 * restarts off: the test stops and kills keepalived itself.
 */
const NODES: NodeSpec[] = [
  { name: 'gw1', address: '198.18.0.11', priority: 150 },
  { name: 'gw2', address: '198.18.0.12', priority: 100 },
];

const missing = labPrerequisites([KEEPALIVED, '/usr/bin/curl', '/usr/bin/unshare', '/usr/bin/nsenter', '/usr/bin/ssh', CLI]);
const required = process.env.EXECGATE_REQUIRE_LAB === '1';
if (missing.length && !required) {
  console.warn(`vrrp lab skipped: missing ${missing.join(', ')} (set EXECGATE_REQUIRE_LAB=1 to make this a failure)`);
}

describe.skipIf(missing.length > 0 && !required)('vrrp leadership in network namespaces (real keepalived)', () => {
  if (missing.length > 0) {
    it('has its prerequisites', () => {
      throw new Error(`EXECGATE_REQUIRE_LAB=1 but the lab cannot run here: missing ${missing.join(', ')}`);
    });
    return;
  }

  let hosts: LabHosts | null = null;
  let supervisor: Supervisor | null = null;
  let clientKey = '';
  let clientNs = '';
  const nodes: Gateway[] = [];
  const vipEvents: Array<{ ns: string; t: number; added: boolean }> = [];

  const node = (name: string) => nodes.find((n) => n.name === name)!;
  /** The lab's supervisor: restarts off, so nothing but the test starts or stops a process. */
  const sv = () => supervisor!;
  const lab = () => hosts!;

  const roleChanges = (n: Gateway) => n.roles.filter((r) => r.role !== 'dead');
  const lastRole = (n: Gateway) => roleChanges(n).at(-1)?.role ?? 'standby';
  const roleSince = (n: Gateway, role: string, after: number) => roleChanges(n).find((r) => r.role === role && r.t >= after);

  /** The OpenSSH client, run from the client namespace. */
  function ssh(host: string, port: number, command: string, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', clientNs, 'ssh', ...sshArgs(port, clientKey), `root@${host}`, command], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  const vipOn = (n: Gateway) => lab().net.addresses(n.ns).includes(VIP);
  const vipEvent = (n: Gateway, added: boolean, after: number) => vipEvents.find((e) => e.ns === n.ns && e.added === added && e.t >= after);
  /** A file in a gateway's own host directory (its tmpfs). */
  const hostFile = (n: Gateway, rel: string) => readFileSync(lab().hostPath(n.name, rel), 'utf8');

  beforeAll(async () => {
    // The run's directory is under /var/tmp, seen by every host (each gateway has its own /tmp).
    const h = (hosts = new LabHosts(uniquePrefix(), (l) => console.log(l), 'vrrp-lab'));
    clientKey = writeKeys(h.dir).ed25519;
    writeClusterFile({ topology: 'vrrp', name: 'vrrplab', dir: h.dir, hostDir: h.hostDir, nodes: NODES, token: randomBytes(16).toString('hex') });
    renderConfigs(h.dir, 'vrrp', NODES);

    h.up();
    clientNs = h.addHost(CLIENT.name, CLIENT.address).ns;
    for (const spec of NODES) {
      const { host, anchor } = h.addMachine(spec.name, spec.address, { nonlocalBind: true });
      nodes.push(newGateway(spec, host.ns, anchor));
    }
    await h.waitAnchored();
    supervisor = new Supervisor(h, { dir: h.dir, etcd: null, supervise: false, log: (l) => console.log(l) });
    for (const n of nodes) {
      sv().checkKeepalived(n);
      // Every VIP change on this host, timestamped as it happens.
      const mon = h.net.spawn(n.ns, ['ip', '-o', 'monitor', 'address']);
      mon.stdout!.on('data', (d: Buffer) => {
        const t = Date.now();
        for (const line of d.toString().split('\n')) {
          if (line.includes(` ${VIP}/`)) vipEvents.push({ ns: n.ns, t, added: !line.startsWith('Deleted') });
        }
      });
    }
    // execgate first (it creates the FIFO and writes the track file), then keepalived.
    for (const n of nodes) sv().startExecgate(n);
    for (const n of nodes) await until(`${n.name} listening`, () => n.listening.length > 0, 20_000);
    // gw1's keepalived first: the leader's track file adds 100 to its priority, so when both
    // start at once whichever reaches MASTER first keeps the lead, whatever its priority.
    sv().startKeepalived(nodes[0]!);
    await until(`${nodes[0]!.name} leads`, () => nodes[0]!.roles.some((r) => r.role === 'leader'), 20_000);
    for (const n of nodes.slice(1)) sv().startKeepalived(n);
  }, 90_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const n of nodes) {
      console.log(`--- ${n.name} execgate (last 40 lines)\n${(n.execgate?.out ?? '').split('\n').slice(-40).join('\n')}`);
      console.log(`--- ${n.name} keepalived (last 30 lines)\n${(n.keepalived?.out ?? '').split('\n').slice(-30).join('\n')}`);
    }
    console.log(`--- VIP events ${JSON.stringify(vipEvents)}`);
  });

  afterAll(async () => {
    if (!hosts) return;
    supervisor?.close(nodes);
    // execgate gets SIGTERM first (it writes -254 and winds down), then the namespace sweep
    // (every process in the test's namespaces, the VIP monitors too).
    for (const n of nodes) if (n.execgate && n.execgate.child.exitCode === null) n.execgate.child.kill('SIGTERM');
    await sleep(500);
    expect(await hosts.teardown(process.env.EXECGATE_KEEP_LAB_DIR === '1', 3000)).toEqual([]);
  }, 60_000);

  it('gw1 (higher priority) leads, gw2 stands by; a command through the VIP runs on gw1', async () => {
    const gw1 = node('gw1');
    const gw2 = node('gw2');
    await until('gw1 to lead', () => lastRole(gw1) === 'leader', 20_000);
    expect(vipOn(gw1)).toBe(true);
    expect(vipOn(gw2)).toBe(false);
    expect(lastRole(gw2)).toBe('standby');
    expect(hostFile(gw1, 'keepalived.track').trim()).toBe('100');
    expect(hostFile(gw2, 'keepalived.track').trim()).toBe('0');
    const r = await ssh(VIP, 22, 'echo "$EXECGATE_NODE $EXECGATE_FENCING_TOKEN"');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [who, token] = r.stdout.trim().split(' ');
    expect(who).toBe('gw1');
    expect(BigInt(token!) % 16n).toBe(0n); // node index 0
  });

  it('a standby refuses exec with exit 75 and the gate message, and nothing starts', async () => {
    const gw2 = node('gw2');
    const marker = join(lab().dir, 'standby-marker');
    const r = await ssh(gw2.address, 2222, `touch ${marker}; echo ran`);
    expect(r.code).toBe(75);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^execgate: gw2 is standby; (leader is gw1( \(token \d+\))?|no leader is known); not running\s*$/);
    await sleep(300);
    expect(existsSync(marker)).toBe(false);
    console.log(`standby refusal: ${r.stderr.trim()}`);
  });

  it('the VIP moving flips roles (keepalived on gw1 stops gracefully); a long command on gw1 is terminated', async () => {
    const gw1 = node('gw1');
    const gw2 = node('gw2');
    const tokenBefore = BigInt(
      roleChanges(gw1)
        .filter((l) => l.role === 'leader')
        .at(-1)!.token!,
    );
    // A long command on gw1's own address (not the VIP, so the VIP move does not reset it).
    const long = ssh(gw1.address, 2222, 'sleep 60; echo finished', 60_000);
    await sleep(1500); // connected and running
    const t0 = Date.now();
    const stopped = sv().stopProc(gw1.keepalived); // SIGTERM, graceful: priority-0 advert, VIP moves at once
    const added = await until('the VIP on gw2', () => vipEvent(gw2, true, t0), 10_000);
    const removed = await until('the VIP off gw1', () => vipEvent(gw1, false, t0), 10_000);
    const led = await until('gw2 to lead', () => roleSince(gw2, 'leader', t0), 10_000);
    const stood = await until('gw1 to stand by', () => roleSince(gw1, 'standby', t0), 10_000);
    console.log(
      `VIP move (graceful keepalived stop on gw1): VIP on gw2 after ${added.t - t0} ms; ` +
        `gw2 execgate leader ${led.t - added.t} ms after the VIP arrived; ` +
        `gw1 execgate standby ${stood.t - removed.t} ms after the VIP left (${stood.t - t0} ms after the stop)`,
    );
    expect(BigInt(led.token!)).toBeGreaterThan(tokenBefore);
    expect(BigInt(led.token!) % 16n).toBe(1n);
    const r = await ssh(VIP, 22, 'echo $EXECGATE_NODE');
    expect(r.stdout.trim()).toBe('gw2');
    // onLeadershipLoss: terminate — gw1's running command is killed (SIGTERM, then SIGKILL after the grace)
    const lr = await long;
    expect(lr.stdout).not.toContain('finished');
    expect(lr.code).not.toBe(0);
    console.log(`long command on gw1 after losing the lead: exit ${lr.code}`);
    // gw1's keepalived comes back: it must stay BACKUP (gw2 at 100 + 100 > gw1 at 150 + 0).
    await stopped;
    sv().startKeepalived(gw1);
    await until('gw1 keepalived to start as BACKUP', () => /Entering (BACKUP|FAULT) STATE/.test(gw1.keepalived!.out), 10_000);
    await sleep(1500);
    expect(vipOn(gw2)).toBe(true);
    expect(vipOn(gw1)).toBe(false);
    expect(lastRole(gw1)).toBe('standby');
    expect(lastRole(gw2)).toBe('leader');
  });

  it("SIGKILL of the leader's whole keepalived process group: it stops leading and runs nothing, although the VIP stays on its interface", async () => {
    const gw1 = node('gw1');
    const gw2 = node('gw2');
    const pgid = gw2.keepalived!.child.pid!;
    const t0 = Date.now();
    process.kill(-pgid, 'SIGKILL');
    const stood = await until('gw2 execgate to stand by', () => roleSince(gw2, 'standby', t0), 10_000);
    const orphaned = vipOn(gw2);
    console.log(`keepalived crash on gw2 (SIGKILL to its process group): gw2 execgate standby after ${stood.t - t0} ms; VIP still on gw2: ${orphaned}`);
    expect(orphaned).toBe(true); // an orphaned VIP, yet no leadership
    const marker = join(lab().dir, 'crash-marker');
    const r = await ssh(gw2.address, 2222, `touch ${marker}; echo ran`);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/^execgate: gw2 is standby; .*not running/);
    expect(lab().net.addresses(gw2.ns)).toContain(VIP);
    const led = await until('gw1 to lead after the master-down timer', () => roleSince(gw1, 'leader', t0), 15_000);
    console.log(`gw1 execgate leader ${led.t - t0} ms after the crash`);
    await sleep(300);
    expect(existsSync(marker)).toBe(false);
    const refusedAgain = await ssh(gw2.address, 2222, `touch ${marker}`);
    expect(refusedAgain.code).toBe(75);
    expect(existsSync(marker)).toBe(false);
  });
});
