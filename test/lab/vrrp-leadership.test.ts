import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { spawn, execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI } from '../helpers/gateway.js';
import { sshArgs } from '../helpers/clients.js';
import { NetnsLab, labPrerequisites } from '../../deploy/lab/netns/namespaces.js';

/**
 * vrrp leadership against real keepalived in network namespaces: a client host and
 * two gateway hosts on a bridge, each gateway running keepalived (VRRPv3 unicast,
 * advert 0.2 s, track_file, notify_fifo) and `execgate serve --cluster --node`.
 */
const KEEPALIVED = '/usr/sbin/keepalived';
const VIP = '198.18.0.100';
const NODES = [
  { name: 'gw1', address: '198.18.0.11', priority: 150 },
  { name: 'gw2', address: '198.18.0.12', priority: 100 },
];
const CLIENT = { name: 'client', address: '198.18.0.10' };

const missing = labPrerequisites([KEEPALIVED, '/usr/bin/ssh', CLI]);
const required = process.env.EXECGATE_REQUIRE_LAB === '1';
if (missing.length && !required) {
  console.warn(`vrrp lab skipped: missing ${missing.join(', ')} (set EXECGATE_REQUIRE_LAB=1 to make this a failure)`);
}

interface LogLine {
  time: number;
  msg: string;
  role?: string;
  token?: string | null;
  leader?: string | null;
}

interface Node {
  name: string;
  address: string;
  dir: string;
  ns: string;
  keepalived: ChildProcess | null;
  keepalivedOut: string;
  execgate: ChildProcess | null;
  lines: LogLine[];
  out: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 15_000, everyMs = 25): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function keepalivedConf(node: Node, peer: { address: string }, priority: number): string {
  return `global_defs {
    router_id ${node.name}
    vrrp_version 3
    vrrp_higher_prio_send_advert true
    vrrp_garp_lower_prio_repeat 3
    notify_fifo ${join(node.dir, 'keepalived.fifo')}
}

track_file execgate_leader {
    file ${join(node.dir, 'keepalived.track')}
    weight 1
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority ${priority}
    advert_int 0.2
    unicast_src_ip ${node.address}
    unicast_peer {
        ${peer.address}
    }
    virtual_ipaddress {
        ${VIP}/24 dev eth0
    }
    track_file {
        execgate_leader weight 1
    }
}
`;
}

describe.skipIf(missing.length > 0 && !required)('vrrp leadership in network namespaces (real keepalived)', () => {
  if (missing.length > 0) {
    it('has its prerequisites', () => {
      throw new Error(`EXECGATE_REQUIRE_LAB=1 but the lab cannot run here: missing ${missing.join(', ')}`);
    });
    return;
  }

  let lab: NetnsLab;
  let dir = '';
  let clientKey = '';
  let clientNs = '';
  const nodes: Node[] = [];
  const vipEvents: Array<{ ns: string; t: number; added: boolean }> = [];
  const monitors: ChildProcess[] = [];

  const node = (name: string) => nodes.find((n) => n.name === name)!;

  function startKeepalived(n: Node): void {
    n.keepalivedOut = '';
    const child = lab.spawn(n.ns, [
      KEEPALIVED, '-n', '-l', '-D', '-P',
      '-p', join(n.dir, 'keepalived.pid'), '-r', join(n.dir, 'vrrp.pid'), '-c', join(n.dir, 'checkers.pid'),
      '-f', join(n.dir, 'keepalived.conf'),
    ]);
    child.stdout!.on('data', (d: Buffer) => (n.keepalivedOut += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (n.keepalivedOut += d.toString()));
    n.keepalived = child;
  }

  function startExecgate(n: Node): void {
    n.out = '';
    n.lines = [];
    const child = lab.spawn(n.ns, [process.execPath, CLI, 'serve', '--cluster', join(n.dir, 'cluster.yaml'), '--node', n.name]);
    let partial = '';
    const onData = (d: Buffer) => {
      n.out += d.toString();
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.startsWith('{')) continue;
        try {
          const parsed = JSON.parse(line) as Omit<LogLine, 'time'> & { time: number | string };
          // pino's time may be epoch ms or an ISO string, depending on the logger setup
          n.lines.push({ ...parsed, time: typeof parsed.time === 'string' ? Date.parse(parsed.time) : parsed.time });
        } catch {
          // not JSON
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (n.out += d.toString()));
    n.execgate = child;
  }

  const roleChanges = (n: Node) => n.lines.filter((l) => l.msg === 'leadership changed');
  const lastRole = (n: Node) => roleChanges(n).at(-1)?.role ?? 'standby';
  const roleSince = (n: Node, role: string, after: number) => roleChanges(n).find((l) => l.role === role && l.time >= after);

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

  const vipOn = (n: Node) => lab.addresses(n.ns).includes(VIP);
  const vipEvent = (n: Node, added: boolean, after: number) => vipEvents.find((e) => e.ns === n.ns && e.added === added && e.t >= after);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'execgate-vrrp-lab-'));
    chmodSync(dir, 0o755);
    execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'host')]);
    clientKey = join(dir, 'client_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`, 'utf8'));

    lab = new NetnsLab();
    lab.up();
    clientNs = lab.addHost(CLIENT.name, CLIENT.address).ns;
    for (const spec of NODES) {
      const host = lab.addHost(spec.name, spec.address);
      lab.exec(host.ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_nonlocal_bind=1']);
      const ndir = join(dir, spec.name);
      mkdirSync(ndir, { recursive: true });
      nodes.push({ name: spec.name, address: spec.address, dir: ndir, ns: host.ns, keepalived: null, keepalivedOut: '', execgate: null, lines: [], out: '' });
    }
    for (const n of nodes) {
      const peer = nodes.find((p) => p !== n)!;
      const spec = NODES.find((s) => s.name === n.name)!;
      // One cluster file per node: the hosts share a filesystem here, so per-node paths differ.
      const cluster = {
        cluster: 'vrrplab',
        vip: { address: VIP, prefixLength: 24, interface: 'eth0', sshPort: 22, bind: 'nonlocal' },
        vrrp: {
          version: 3,
          advertInterval: 0.2,
          keepalivedPidFile: join(n.dir, 'keepalived.pid'),
          keepalivedVrrpPidFile: join(n.dir, 'vrrp.pid'),
          pollIntervalMs: 150,
          peerPollIntervalMs: 500,
        },
        leadership: { source: 'vrrp', onLeadershipLoss: 'terminate' },
        trackFile: join(n.dir, 'keepalived.track'),
        notifyFifo: join(n.dir, 'keepalived.fifo'),
        stateDir: join(n.dir, 'state'),
        gateway: {
          hostKeys: [join(dir, 'host/ssh_host_ed25519_key'), join(dir, 'host/ssh_host_rsa_key')],
          authorizedKeys: join(dir, 'authorized_keys'),
          runAs: { user: 'root', permitRoot: true }, // the lab logs in as root
          audit: { path: join(n.dir, 'audit.jsonl') },
          exec: { killGraceSeconds: 2 },
        },
        nodes: NODES.map((s) => ({ name: s.name, address: s.address, priority: s.priority, sshPort: 2222, httpPort: 9422 })),
      };
      writeFileSync(join(n.dir, 'cluster.yaml'), stringify(cluster));
      writeFileSync(join(n.dir, 'keepalived.conf'), keepalivedConf(n, peer, spec.priority));
      const check = spawnSync('ip', ['netns', 'exec', n.ns, KEEPALIVED, '-t', '-e', '-f', join(n.dir, 'keepalived.conf')], { encoding: 'utf8' });
      if (check.status !== 0) throw new Error(`keepalived -t rejected the lab config (${check.status}): ${check.stderr}`);
      // Every VIP change on this host, timestamped as it happens.
      const mon = spawn('ip', ['-n', n.ns, '-o', 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
      mon.stdout.on('data', (d: Buffer) => {
        const t = Date.now();
        for (const line of d.toString().split('\n')) {
          if (line.includes(` ${VIP}/`)) vipEvents.push({ ns: n.ns, t, added: !line.startsWith('Deleted') });
        }
      });
      monitors.push(mon);
    }
    // execgate first (it creates the FIFO and writes the track file), then keepalived.
    for (const n of nodes) startExecgate(n);
    for (const n of nodes) await until(`${n.name} listening`, () => n.lines.some((l) => l.msg === 'execgate listening'), 20_000);
    // gw1's keepalived first: the leader's track file adds 100 to its priority, so when both
    // start at once whichever reaches MASTER first keeps the lead, whatever its priority.
    startKeepalived(nodes[0]!);
    await until(`${nodes[0]!.name} leads`, () => nodes[0]!.lines.some((l) => l.msg === 'leadership changed' && l.role === 'leader'), 20_000);
    for (const n of nodes.slice(1)) startKeepalived(n);
  }, 90_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const n of nodes) {
      console.log(`--- ${n.name} execgate (last 40 lines)\n${n.out.split('\n').slice(-40).join('\n')}`);
      console.log(`--- ${n.name} keepalived (last 30 lines)\n${n.keepalivedOut.split('\n').slice(-30).join('\n')}`);
    }
    console.log(`--- VIP events ${JSON.stringify(vipEvents)}`);
  });

  afterAll(async () => {
    for (const m of monitors) m.kill('SIGTERM');
    // execgate gets SIGTERM first (it writes -254 and winds down), then the namespace sweep.
    for (const n of nodes) if (n.execgate && n.execgate.exitCode === null) n.execgate.kill('SIGTERM');
    await sleep(500);
    if (lab) {
      await lab.teardown();
      expect(lab.leftovers()).toEqual([]);
    }
    if (process.env.EXECGATE_KEEP_LAB_DIR !== '1' && dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('gw1 (higher priority) leads, gw2 stands by; a command through the VIP runs on gw1', async () => {
    const gw1 = node('gw1');
    const gw2 = node('gw2');
    await until('gw1 to lead', () => lastRole(gw1) === 'leader', 20_000);
    expect(vipOn(gw1)).toBe(true);
    expect(vipOn(gw2)).toBe(false);
    expect(lastRole(gw2)).toBe('standby');
    expect(readFileSync(join(gw1.dir, 'keepalived.track'), 'utf8').trim()).toBe('100');
    expect(readFileSync(join(gw2.dir, 'keepalived.track'), 'utf8').trim()).toBe('0');
    const r = await ssh(VIP, 22, 'echo "$EXECGATE_NODE $EXECGATE_FENCING_TOKEN"');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [who, token] = r.stdout.trim().split(' ');
    expect(who).toBe('gw1');
    expect(BigInt(token!) % 16n).toBe(0n); // node index 0
  });

  it('a standby refuses exec with exit 75 and the gate message, and nothing starts', async () => {
    const gw2 = node('gw2');
    const marker = join(dir, 'standby-marker');
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
    const tokenBefore = BigInt(roleChanges(gw1).filter((l) => l.role === 'leader').at(-1)!.token!);
    // A long command on gw1's own address (not the VIP, so the VIP move does not reset it).
    const long = ssh(gw1.address, 2222, 'sleep 60; echo finished', 60_000);
    await sleep(1500); // connected and running
    const t0 = Date.now();
    gw1.keepalived!.kill('SIGTERM'); // graceful: priority-0 advert, VIP moves at once
    const added = await until('the VIP on gw2', () => vipEvent(gw2, true, t0), 10_000);
    const removed = await until('the VIP off gw1', () => vipEvent(gw1, false, t0), 10_000);
    const led = await until('gw2 to lead', () => roleSince(gw2, 'leader', t0), 10_000);
    const stood = await until('gw1 to stand by', () => roleSince(gw1, 'standby', t0), 10_000);
    console.log(
      `VIP move (graceful keepalived stop on gw1): VIP on gw2 after ${added.t - t0} ms; ` +
        `gw2 execgate leader ${led.time - added.t} ms after the VIP arrived; ` +
        `gw1 execgate standby ${stood.time - removed.t} ms after the VIP left (${stood.time - t0} ms after the stop)`,
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
    const old = gw1.keepalived!;
    if (old.exitCode === null && old.signalCode === null) await new Promise((r) => old.once('exit', r));
    startKeepalived(gw1);
    await until('gw1 keepalived to start as BACKUP', () => /Entering (BACKUP|FAULT) STATE/.test(gw1.keepalivedOut), 10_000);
    await sleep(1500);
    expect(vipOn(gw2)).toBe(true);
    expect(vipOn(gw1)).toBe(false);
    expect(lastRole(gw1)).toBe('standby');
    expect(lastRole(gw2)).toBe('leader');
  });

  it("SIGKILL of the leader's whole keepalived process group: it stops leading and runs nothing, although the VIP stays on its interface", async () => {
    const gw1 = node('gw1');
    const gw2 = node('gw2');
    const pgid = gw2.keepalived!.pid!;
    const t0 = Date.now();
    process.kill(-pgid, 'SIGKILL');
    const stood = await until('gw2 execgate to stand by', () => roleSince(gw2, 'standby', t0), 10_000);
    const orphaned = vipOn(gw2);
    console.log(`keepalived crash on gw2 (SIGKILL to its process group): gw2 execgate standby after ${stood.time - t0} ms; VIP still on gw2: ${orphaned}`);
    expect(orphaned).toBe(true); // an orphaned VIP, yet no leadership
    const marker = join(dir, 'crash-marker');
    const r = await ssh(gw2.address, 2222, `touch ${marker}; echo ran`);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/^execgate: gw2 is standby; .*not running/);
    expect(lab.addresses(gw2.ns)).toContain(VIP);
    const led = await until('gw1 to lead after the master-down timer', () => roleSince(gw1, 'leader', t0), 15_000);
    console.log(`gw1 execgate leader ${led.time - t0} ms after the crash`);
    await sleep(300);
    expect(existsSync(marker)).toBe(false);
    const refusedAgain = await ssh(gw2.address, 2222, `touch ${marker}`);
    expect(refusedAgain.code).toBe(75);
    expect(existsSync(marker)).toBe(false);
  });
});
