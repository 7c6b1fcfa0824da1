import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, makeClientKeys, waitForOutput, type ClientKeys } from '../helpers/gateway.js';
import { jsch, run, sshArgs } from '../helpers/clients.js';
import { freePorts } from '../helpers/etcdCluster.js';

/**
 * Two real gateways of one static cluster on loopback (gw1 127.0.0.11, gw2 127.0.0.12).
 * gw2 runs in its own mount namespace with a private /tmp (a tmpfs, as the failover lab
 * gives each host), so a file appears there only if replication put it there. A real
 * `scp -O` uploads a Rundeck dispatch script to gw1; the copy must be on gw2, with the
 * same owner and mode, when scp returns; `rm -f` through gw1 removes it on both.
 */

const required = process.env.EXECGATE_REQUIRE_LAB === '1';
const isRoot = process.geteuid?.() === 0;
const missingTool = ['unshare', 'nsenter', 'mount', 'scp', 'ssh'].find((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const why = !isRoot ? 'needs root (a mount namespace with a private /tmp for the second gateway)' : missingTool ? `${missingTool} is not installed` : null;
if (why && required) throw new Error(`script replication test: ${why} (EXECGATE_REQUIRE_LAB=1 makes this a failure)`);
if (why) console.warn(`script replication test skipped: ${why}`);

const jschMissing = !existsSync('/usr/share/java/jsch.jar') || spawnSync('sh', ['-c', 'command -v javac']).status !== 0 ? 'JSch (libjsch-java) or javac is not installed' : null;
if (jschMissing && required) throw new Error(`script replication test: ${jschMissing} (EXECGATE_REQUIRE_LAB=1 makes this a failure)`);

const TOKEN = 'cluster-shared-token-for-the-replication-test';

interface Node {
  name: string;
  address: string;
  proc: ChildProcess;
  output: () => string;
  sshPort: number;
  httpPort: number;
}

/** The checkout (CLI is <repo>/dist/src/cli.js); a clean-clone CI keeps it under /tmp. */
const REPO = resolve(CLI, '../../..');

/**
 * gw2's private /tmp. When the checkout itself lies under /tmp, the new tmpfs would hide
 * it, so it is bound aside first (on a tmpfs over /mnt, private to the namespace) and
 * bound back at the same path, as the failover lab does for its hosts.
 */
function privateTmpScript(): string {
  const keepRepo = REPO.startsWith('/tmp/') ? 'mount -t tmpfs tmpfs /mnt && mkdir /mnt/repo && mount --bind "$REPO" /mnt/repo && ' : '';
  const restoreRepo = REPO.startsWith('/tmp/') ? ' && mkdir -p "$REPO" && mount --bind /mnt/repo "$REPO"' : '';
  return `${keepRepo}mount -t tmpfs tmpfs /tmp${restoreRepo} && exec "$@"`;
}

/** Sees gw2's own /tmp: runs a command in its mount namespace. */
function inGw2(gw2: Node, args: string[]) {
  return spawnSync('nsenter', ['-t', String(gw2.proc.pid), '-m', ...args], { encoding: 'utf8' });
}

describe.skipIf(why !== null)('dispatch-script replication between two gateways (gw2 with its own /tmp)', () => {
  let dir: string;
  let keys: ClientKeys;
  const nodes: Node[] = [];
  const hostTmpFiles: string[] = [];
  let gw1: Node;
  let gw2: Node;
  let seq = 0;
  const scriptPath = () => `/tmp/${process.pid}${++seq}-${Date.now()}-web01-dispatch-script.tmp.sh`;

  const ssh = (node: Node, command: string) => run('ssh', [...sshArgs(node.sshPort, keys.ed25519), `root@${node.address}`, command]);

  beforeAll(async () => {
    // Not under /tmp: gw2 must read its config and keys after /tmp became its own tmpfs.
    dir = mkdtempSync('/var/tmp/execgate-replica-it-');
    execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'host')]);
    keys = makeClientKeys(dir);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${keys.ed25519}.pub`, 'utf8') + readFileSync(`${keys.rsaPem}.pub`, 'utf8'), { mode: 0o600 });
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    const ports = await freePorts(5);
    const specs = [
      { name: 'gw1', address: '127.0.0.11', sshPort: ports[0]!, httpPort: ports[1]!, priority: 150 },
      { name: 'gw2', address: '127.0.0.12', sshPort: ports[2]!, httpPort: ports[3]!, priority: 100 },
    ];
    for (const spec of specs) {
      const nodeDir = join(dir, spec.name);
      mkdirSync(nodeDir);
      const cluster = {
        cluster: 'replicatest',
        vip: { address: '127.0.0.100', prefixLength: 24, interface: 'lo', sshPort: ports[4]!, bind: 'node-port' },
        // Static: both nodes admit commands, so an exec can reach either (as after a failover).
        leadership: { source: 'static', scriptReplication: { timeoutMs: 2000 } },
        trackFile: join(nodeDir, 'keepalived.track'),
        notifyFifo: join(nodeDir, 'keepalived.fifo'),
        stateDir: nodeDir,
        gateway: {
          hostKeys: [join(dir, 'host/ssh_host_ed25519_key'), join(dir, 'host/ssh_host_rsa_key')],
          authorizedKeys: join(dir, 'authorized_keys'),
          runAs: { user: userInfo().username, permitRoot: true },
          audit: { path: join(nodeDir, 'audit.jsonl') },
          http: { tokenFile: join(dir, 'token') },
        },
        nodes: specs.map(({ name, address, sshPort, httpPort, priority }) => ({ name, address, sshPort, httpPort, priority })),
      };
      const file = join(nodeDir, 'cluster.yaml');
      writeFileSync(file, stringify(cluster));
      const serve = [process.execPath, CLI, 'serve', '--cluster', file, '--node', spec.name];
      const proc =
        spec.name === 'gw2'
          ? // unshare without --fork execs sh, which execs node: proc.pid is the gateway, in its own mount namespace.
            spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', privateTmpScript(), 'sh', ...serve], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REPO } })
          : spawn(serve[0]!, serve.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const node: Node = { ...spec, proc, output: () => out };
      nodes.push(node);
      await waitForOutput(proc, node.output, /"msg":"execgate listening"/, 20_000);
    }
    [gw1, gw2] = nodes as [Node, Node];
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) {
      if (n.proc.exitCode !== null || n.proc.signalCode !== null) continue;
      const exited = new Promise((r) => n.proc.once('exit', r));
      n.proc.kill('SIGTERM');
      const timer = setTimeout(() => n.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    for (const f of hostTmpFiles) rmSync(f, { force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gw2 really has its own /tmp', () => {
    const sentinel = `/tmp/execgate-replica-sentinel-${process.pid}`;
    hostTmpFiles.push(sentinel);
    writeFileSync(sentinel, 'host');
    expect(inGw2(gw2, ['test', '-e', sentinel]).status).toBe(1);
  });

  it('scp -O to gw1: the copy is on gw2 (same content, owner, mode) when scp returns; exec works on gw2; rm -f through gw1 removes both', async () => {
    const remote = scriptPath();
    hostTmpFiles.push(remote);
    const local = join(dir, 'step.sh');
    const body = `#!/bin/sh\necho "ran on $EXECGATE_NODE with $1"\n`;
    writeFileSync(local, body, { mode: 0o750 });
    const scp = await run('scp', ['-O', ...sshArgs(gw1.sshPort, keys.ed25519).map((a) => (a === '-p' ? '-P' : a)), local, `root@${gw1.address}:${remote}`]);
    // Checked at once, before anything else runs: the copy had to exist when scp returned,
    // and gw1 had logged the peers' answers (it logs them before it sends the exit status).
    const gw1Log = gw1.output();
    const onGw2 = inGw2(gw2, ['stat', '-c', '%a %u %g %s', remote]);
    expect(scp.code, scp.stderr).toBe(0);
    expect(onGw2.stderr).toBe('');
    const here = lstatSync(remote);
    expect(onGw2.stdout.trim()).toBe(`${(here.mode & 0o777).toString(8)} ${here.uid} ${here.gid} ${here.size}`);
    expect(here.mode & 0o777).toBe(0o750);
    expect(inGw2(gw2, ['cat', remote]).stdout).toBe(body);
    expect(gw1Log).toMatch(/"msg":"dispatch script copied to every peer"/);

    // Rundeck's chmod reaches gw1, then a handover sends the exec to gw2: the copy follows the mode.
    expect((await ssh(gw1, `chmod +x ${remote}`)).code).toBe(0);
    expect(inGw2(gw2, ['stat', '-c', '%a', remote]).stdout.trim()).toBe('751');
    expect((await ssh(gw2, `chmod +x ${remote}`)).code).toBe(0);
    const exec = await ssh(gw2, `${remote} arg1`);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout.toString()).toBe('ran on gw2 with arg1\n');

    const rm = await ssh(gw1, `rm -f ${remote}`);
    expect(rm.code, rm.stderr).toBe(0);
    expect(existsSync(remote)).toBe(false);
    expect(inGw2(gw2, ['test', '-e', remote]).status).toBe(1);

    const metrics = await (await fetch(`http://${gw1.address}:${gw1.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^execgate_script_replication_total\{result="ok",node="gw1"\} 2$/m); // the upload, then the chmod
  });

  it('an exec on gw2 of a script it never received: exit 75 saying it was not replicated', async () => {
    const remote = scriptPath();
    hostTmpFiles.push(remote);
    writeFileSync(remote, '#!/bin/sh\necho never\n', { mode: 0o755 }); // on gw1's side only ("before gw2 joined")
    const r = await ssh(gw2, remote);
    expect(r.code).toBe(75);
    expect(r.stderr).toContain('the script was uploaded to another node before a failover; retry the step');
    expect(r.stderr).toContain('the upload was not replicated to this node: peer transfer failed or the file was uploaded before this node joined');
  });

  it('gw2 refuses a copy onto a symbolic link: the upload still succeeds on gw1, and gw2 says why at the exec', async () => {
    const remote = scriptPath();
    hostTmpFiles.push(remote);
    expect(inGw2(gw2, ['ln', '-s', '/nonexistent-target', remote]).status).toBe(0);
    const local = join(dir, 'step2.sh');
    writeFileSync(local, '#!/bin/sh\necho two\n', { mode: 0o700 });
    const scp = await run('scp', ['-O', ...sshArgs(gw1.sshPort, keys.ed25519).map((a) => (a === '-p' ? '-P' : a)), local, `root@${gw1.address}:${remote}`]);
    expect(scp.code, scp.stderr).toBe(0);
    expect(readFileSync(remote, 'utf8')).toBe('#!/bin/sh\necho two\n');
    expect(gw1.output()).toMatch(/"msg":"no standby received the dispatch script[^"]*"/);
    expect(gw2.output()).toMatch(/"status":409[^\n]*is a symbolic link on this node/);
    const r = await ssh(gw2, remote);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/retry the step \(no copy reached gw2: .* is a symbolic link on this node; not replacing it\)/);
    inGw2(gw2, ['rm', '-f', remote]);
  });

  // JSch (Rundeck's jsch-scp) hangs up right after the sink's last acknowledgement, without
  // waiting for an exit status: that acknowledgement is what has to wait for the copies.
  it.skipIf(jschMissing !== null)('a Rundeck JSch script step on gw1: the upload reaches gw2 before JSch hears "uploaded", rm removes it there', async () => {
    const local = join(dir, 'jsch-step.sh');
    writeFileSync(local, '#!/bin/sh\necho "step ran: $*"\n', { mode: 0o644 });
    const execid = `${process.pid}${Date.now()}`;
    const r = await jsch([
      '--host',
      gw1.address,
      '--port',
      String(gw1.sshPort),
      '--user',
      'root',
      '--key',
      keys.rsaPem,
      '--node',
      'web01',
      '--mode',
      'step',
      '--script',
      local,
      '--execid',
      execid,
      '--args',
      'x y',
    ]);
    expect(
      r.ops.find((o) => o.op === 'error'),
      r.stderr,
    ).toBeUndefined();
    const [scp, , exec, rm] = r.ops;
    expect(scp).toMatchObject({ op: 'scp', exit: 0 });
    expect(exec).toMatchObject({ op: 'exec', exit: 0, stdout: 'step ran: x y\n' });
    expect(rm).toMatchObject({ op: 'exec', exit: 0 });
    const path = scp!.path!;
    hostTmpFiles.push(path);
    const lines = (out: string) =>
      out
        .split('\n')
        .filter((l) => l.includes(path))
        .map((l) => JSON.parse(l) as { msg: string; time: string });
    const sent = lines(gw1.output()).find((l) => l.msg === 'dispatch script copied to every peer');
    const received = lines(gw2.output()).find((l) => l.msg === 'dispatch-script copy received');
    const removed = lines(gw2.output()).find((l) => l.msg.startsWith('dispatch-script copy removed'));
    expect(sent, gw1.output().slice(-2000)).toBeDefined();
    expect(received).toBeDefined();
    expect(removed).toMatchObject({ removed: true });
    expect(inGw2(gw2, ['test', '-e', path]).status).toBe(1);
    // gw2 had the copy before JSch, told "uploaded", opened its next connection (chmod) to gw1.
    const gw1Audit = readFileSync(join(dir, 'gw1', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, string>);
    const chmodStart = gw1Audit.find((a) => a.event === 'start' && a.command === `chmod +x ${path}`);
    expect(chmodStart).toBeDefined();
    expect(Date.parse(received!.time)).toBeLessThanOrEqual(Date.parse(chmodStart!.start!));
  });

  it('a PUT /peer/dispatch-script without the cluster token, or with a wrong one, is refused by gw2 with a warning naming the caller and the path; nothing is written', async () => {
    const path = scriptPath();
    const url = `http://${gw2.address}:${gw2.httpPort}/peer/dispatch-script`;
    const headers = { 'x-execgate-path': encodeURIComponent(path), 'x-execgate-mode': '755', 'x-execgate-uid': '0', 'x-execgate-gid': '0', 'x-execgate-from': 'intruder' };
    const none = await fetch(url, { method: 'PUT', headers, body: '#!/bin/sh\necho owned\n' });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: string }).error).toMatch(/no bearer token.*cluster's token \(gateway\.http\.tokenFile/);
    const wrong = await fetch(url, { method: 'PUT', headers: { ...headers, authorization: 'Bearer not-the-cluster-token-at-all' }, body: '#!/bin/sh\n' });
    expect(wrong.status).toBe(401);
    // Any other peer-only path too, not only the one a receiver serves.
    expect((await fetch(`http://${gw2.address}:${gw2.httpPort}/peer/anything-else`)).status).toBe(401);
    expect(inGw2(gw2, ['test', '-e', path]).status).toBe(1);
    const refusals = gw2
      .output()
      .split('\n')
      .filter((l) => l.includes('refused a peer request without the cluster token'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(refusals.slice(-3)).toMatchObject([
      { level: 40, peer: '127.0.0.1', from: 'intruder', method: 'PUT', path: '/peer/dispatch-script', why: 'no bearer token' },
      { level: 40, peer: '127.0.0.1', method: 'PUT', why: 'wrong bearer token' },
      { level: 40, method: 'GET', path: '/peer/anything-else' },
    ]);
  });
});
