import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { stringify } from 'yaml';
import { CLI, ROOT, makeClientKeys, startTestGateway, waitForOutput, type TestGateway } from '../helpers/gateway.js';
import { freePorts, makeClusterFixture, type ClusterFixture } from '../helpers/etcdCluster.js';
import { run, sshArgs } from '../helpers/clients.js';
import { until } from '../helpers/until.js';
import { proxyV2Header } from '../helpers/proxyRelay.js';
import { writeForwardingPreload } from '../../bench/servers/forwardingExecgate.js';

/**
 * gw2 is one node of a two-node cluster (static leadership) on 127.0.0.2; gw1, the
 * draining node, is the peer at 127.0.0.1: an execgate whose SshServer forwardTo (set by
 * a preload) sends every new connection to gw2. Clients connect to gw1 from 127.0.0.5,
 * so gw2 can only know that address from gw1's PROXY header.
 */
describe('a draining node forwards new connections at TCP level, PROXY v2 first', () => {
  let fixture: ClusterFixture;
  let gw1: TestGateway;
  let gw2: { proc: ChildProcess; port: number; output: () => string; audit: () => Array<Record<string, unknown>> };
  let targetFile: string;
  /** A key gw2 accepts only from="127.0.0.5". */
  let fromKey: string;
  const CLIENT = '127.0.0.5';

  const forwardTo = (target: { host: string; port: number; name: string } | null) => writeFileSync(targetFile, target ? JSON.stringify(target) : '');
  /** OpenSSH with gw2's client key, bound to `from`, to host:port. */
  const sshVia = (host: string, port: number, command: string, options: { from?: string; input?: Buffer; key?: string } = {}) =>
    run('ssh', [...sshArgs(port, options.key ?? fixture.keys.ed25519, ['-b', options.from ?? CLIENT]), `root@${host}`, command], { input: options.input });
  const metric = async (name: string) => {
    const text = await fetch(`${gw1.httpUrl}/metrics`).then((r) => r.text());
    return text.split('\n').filter((l) => l.startsWith(name));
  };
  /** gw1 counts a forwarded connection once both of its sockets have closed, a moment after the client exits. */
  const metricBecomes = async (name: string, value: RegExp) => {
    let lines: string[] = [];
    await until(async () => {
      lines = await metric(name);
      return lines.length === 1 && value.test(lines[0]!);
    }, 5000);
    return lines;
  };
  const lastOpenVia = () => [...gw1.output().matchAll(/"msg":"preload: openVia","count":(\d+)/g)].map((m) => Number(m[1])).at(-1);

  beforeAll(async () => {
    fixture = makeClusterFixture('fwd');
    mkdirSync(join(fixture.dir, 'from'));
    fromKey = makeClientKeys(join(fixture.dir, 'from')).ed25519;
    writeFileSync(join(fixture.dir, 'authorized_keys'), `${readFileSync(join(fixture.dir, 'authorized_keys'), 'utf8')}from="${CLIENT}" ${readFileSync(`${fromKey}.pub`, 'utf8')}`);
    const [gw2Port, gw2Http, vipPort] = await freePorts(3, '127.0.0.1');
    const nodeDir = join(fixture.dir, 'gw2');
    mkdirSync(nodeDir);
    const auditPath = join(nodeDir, 'audit.jsonl');
    const cluster = {
      cluster: 'fwd',
      vip: { address: '127.0.0.100', prefixLength: 24, interface: 'lo', sshPort: vipPort, bind: 'node-port' },
      leadership: { source: 'static' },
      trackFile: join(nodeDir, 'keepalived.track'),
      notifyFifo: join(nodeDir, 'keepalived.fifo'),
      stateDir: nodeDir,
      gateway: {
        hostKeys: [join(fixture.dir, 'host/ssh_host_ed25519_key'), join(fixture.dir, 'host/ssh_host_rsa_key')],
        authorizedKeys: join(fixture.dir, 'authorized_keys'),
        runAs: { user: userInfo().username, permitRoot: true },
        audit: { path: auditPath },
        // a load balancer: its header stays mandatory
        proxyProtocol: { trustedProxies: ['127.0.0.3'] },
        log: { level: 'debug' },
      },
      nodes: [
        { name: 'gw1', address: '127.0.0.1', priority: 100, sshPort: 1, httpPort: 2 },
        { name: 'gw2', address: '127.0.0.2', priority: 90, sshPort: gw2Port, httpPort: gw2Http },
      ],
    };
    const file = join(nodeDir, 'cluster.yaml');
    writeFileSync(file, stringify(cluster));
    const proc = spawn(process.execPath, [CLI, 'serve', '--cluster', file, '--node', 'gw2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    gw2 = {
      proc,
      port: gw2Port!,
      output: () => out,
      audit: () =>
        (existsSync(auditPath)
          ? readFileSync(auditPath, 'utf8')
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l) as Record<string, unknown>)
          : []
        ).filter((r) => r.event === 'end'),
    };
    await waitForOutput(proc, gw2.output, /"msg":"execgate listening"/, 20_000);

    const gw1Dir = join(fixture.dir, 'gw1');
    mkdirSync(gw1Dir);
    targetFile = join(gw1Dir, 'forward-to.json');
    const preload = writeForwardingPreload(gw1Dir, targetFile, '127.0.0.1', join(ROOT, 'dist'));
    gw1 = await startTestGateway({ node: 'gw1', log: { level: 'debug' } }, ['--import', preload]);
    forwardTo({ host: '127.0.0.2', port: gw2.port, name: 'gw2' });
  }, 60_000);

  afterAll(async () => {
    await gw1?.stop();
    if (gw2 && gw2.proc.exitCode === null && gw2.proc.signalCode === null) {
      const exited = new Promise((r) => gw2.proc.once('exit', r));
      gw2.proc.kill('SIGTERM');
      await exited;
    }
    if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
  });

  it('the command runs on gw2, which sees (from=, $SSH_CONNECTION, audit) the real client address and port', async () => {
    const r = await sshVia('127.0.0.1', gw1.port, 'echo $EXECGATE_NODE $SSH_CONNECTION');
    expect(r.stderr).toBe('');
    const [node, address, port] = r.stdout.toString().trim().split(' ');
    expect(node).toBe('gw2');
    expect(address).toBe(CLIENT);
    // the port gw1 saw the client come from (its forwardTo logs the peer) is the one gw2 reports
    expect(gw1.output()).toContain(`"msg":"preload: forwarding","client":"${CLIENT}:${port}"`);
    expect(await until(() => gw2.audit().some((a) => a.client === `${CLIENT}:${port}`), 5000)).not.toBeNull();
    // gw1 ran nothing itself
    expect(gw1.audit()).toEqual([]);
    expect(await metricBecomes('execgate_forwarded_connections_total{result="relayed"', / [1-9]\d*$/)).toEqual([expect.stringMatching(/ [1-9]\d*$/)]);
    // from= on gw2 judges the real client: the key works through gw1, not from the peer address itself
    expect((await sshVia('127.0.0.1', gw1.port, 'echo from-ok', { key: fromKey })).stdout.toString()).toBe('from-ok\n');
    expect((await sshVia('127.0.0.2', gw2.port, 'echo from-ok', { key: fromKey, from: '127.0.0.1' })).code).toBe(255);
  });

  it('2 MiB of stdin come back as stdout byte-exact through the forwarder', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const r = await sshVia('127.0.0.1', gw1.port, 'cat', { input: data });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(data.length);
    expect(r.stdout.equals(data)).toBe(true);
  });

  it('openVia counts the forwarded connection on the address it arrived on, and says when it changes', async () => {
    // the previous test's connection is closed on gw1 too
    expect(await until(() => lastOpenVia() === 0, 5000)).not.toBeNull();
    const before = gw1.output().length;
    const r = await sshVia('127.0.0.1', gw1.port, 'true');
    expect(r.code).toBe(0);
    expect(await until(() => /"msg":"preload: openVia","count":0/.test(gw1.output().slice(before)), 5000)).not.toBeNull();
    const counts = [
      ...gw1
        .output()
        .slice(before)
        .matchAll(/"msg":"preload: openVia","count":(\d+)/g),
    ].map((m) => Number(m[1]));
    expect(counts).toEqual([1, 0]);
    expect(await metricBecomes('execgate_forwarded_connections_open', / 0$/)).toEqual([expect.stringMatching(/ 0$/)]);
  });

  it('gw2 also takes direct connections from the peer address (PROXY header optional for peers)', async () => {
    const r = await sshVia('127.0.0.2', gw2.port, 'echo $SSH_CONNECTION', { from: '127.0.0.1' });
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.2 /);
  });

  it('a peer that starts a PROXY header must send a valid one', async () => {
    const header = proxyV2Header(CLIENT, 40000, '127.0.0.2', gw2.port);
    header[13] = 0x31; // AF_UNIX, which a TCP peer cannot have
    const text = await rawExchange('127.0.0.1', gw2.port, header);
    expect(text).toMatch(/execgate: bad PROXY header from cluster node 127\.0\.0\.1: unsupported PROXY v2 address family 0x31/);
  });

  it('a load balancer (proxyProtocol.trustedProxies) still must send a header', async () => {
    const text = await rawExchange('127.0.0.3', gw2.port, Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'));
    expect(text).toMatch(/execgate: bad PROXY header from load balancer 127\.0\.0\.3: not a PROXY v2 header/);
  });

  it('gw2 unreachable: the client gets a clean SSH refusal naming both nodes and the error', async () => {
    const [closed] = await freePorts(1, '127.0.0.1');
    forwardTo({ host: '127.0.0.1', port: closed!, name: 'gw2' });
    try {
      const r = await sshVia('127.0.0.1', gw1.port, 'echo should-not-run');
      expect(r.code).toBe(255);
      expect(r.stdout.toString()).toBe('');
      expect(r.stderr).toContain(`execgate: gw1 is draining and could not reach the leader gw2 at 127.0.0.1:${closed}: connect ECONNREFUSED 127.0.0.1:${closed}; retry`);
      expect(await metricBecomes('execgate_forwarded_connections_total{result="unreachable"', / 1$/)).toEqual([expect.stringMatching(/ 1$/)]);
    } finally {
      forwardTo({ host: '127.0.0.2', port: gw2.port, name: 'gw2' });
    }
  });

  it('gw2 killed mid-connection: the client ends promptly (255), gw1 holds nothing', async () => {
    const running = sshVia('127.0.0.1', gw1.port, 'echo started; sleep 60');
    let out = '';
    running.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    expect(await until(() => out.includes('started'), 10_000)).not.toBeNull();
    const killedAt = Date.now();
    gw2.proc.kill('SIGKILL');
    const r = await running;
    expect(r.code).toBe(255);
    expect(Date.now() - killedAt).toBeLessThan(5000);
    expect(await metricBecomes('execgate_forwarded_connections_open', / 0$/)).toEqual([expect.stringMatching(/ 0$/)]);
    expect(await until(() => lastOpenVia() === 0, 5000)).not.toBeNull();
  }, 30_000);
});

/** Connects from `from`, sends `bytes`, returns everything the server says until it closes. */
function rawExchange(from: string, port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = connect({ port, host: '127.0.0.2', localAddress: from }, () => s.write(bytes));
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
  });
}
