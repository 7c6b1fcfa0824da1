import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { ROOT } from '../helpers/gateway.js';
import { NetnsLab, labPrerequisites, uniquePrefix } from '../../deploy/lab/netns/namespaces.js';
import { DebianRoot, rootPrerequisites, warmRoots, CACHE, type Suite } from '../helpers/debianRoot.js';
import { DEB_ARCH, debPackage, packagePrerequisite } from '../helpers/debPackage.js';

/**
 * The Debian package on fresh Debian 12 and 13 roots (issue 18), as an operator installs it:
 * a minbase root from debootstrap (cached under $EXECGATE_CI_CACHE), `apt-get install` of the
 * built package (Depends come from deb.debian.org), deploy/install.sh for a one-node cluster
 * (static leadership: no keepalived needed without systemd), then the gateway started with
 * the ExecStart of the unit install.sh rendered, inside the root and inside a private network
 * namespace (198.18.0.0/15), and a command through it with the real OpenSSH client from a
 * second namespace. `execgate doctor --node` must pass in the root. Then an upgrade to the
 * same package with a bumped version keeps the cluster file, host keys, authorized keys and
 * audit log, and the upgraded gateway serves with the same host key.
 *
 * The package is artifacts/execgate_<version>_<arch>.deb, built by the test (npm run package)
 * when missing or older than its sources (test/helpers/debPackage.ts, the rule
 * test/tools/package.test.ts uses), or $EXECGATE_PACKAGE_DEB. Without
 * EXECGATE_REQUIRE_LAB=1 a missing prerequisite skips with the reason; with it, it fails.
 */
const SUITES: Suite[] = ['bookworm', 'trixie'];
const INSTALL_SH = join(ROOT, 'deploy/install.sh');
const required = process.env.EXECGATE_REQUIRE_LAB === '1';

const GW = { name: 'gw1', address: '198.18.0.11', sshPort: 2222, httpPort: 9422 };
const CLIENT = { name: 'client', address: '198.18.0.10' };
const VIP = '198.18.0.100';
const SSH_USER = 'rundeck';

const missing = [...labPrerequisites(['/usr/bin/ssh', '/usr/bin/ssh-keygen', '/usr/bin/dpkg-deb']), ...rootPrerequisites(), ...[packagePrerequisite()].filter((m): m is string => m !== null)];

const figures: string[] = [];
let packageReported = false;
let rootsBuilt = new Map<Suite, number>();
if (missing.length === 0) {
  // Cold, this is most of the test's time: both debootstraps (waiting on the mirror) run
  // while the package builds (on the CPU).
  beforeAll(async () => {
    const roots = warmRoots(SUITES, (l) => console.log(`[roots] ${l}`));
    roots.catch(() => {}); // awaited below; not unhandled while debPackage() blocks
    try {
      debPackage();
    } finally {
      rootsBuilt = await roots;
    }
  }, 20 * 60_000);
}
afterAll(() => {
  if (figures.length) console.log(`install test figures (not asserted):\n${figures.join('\n')}`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The same package with version <version>+ci1 (an upgrade for dpkg: prerm upgrade, new files, postinst configure OLD). */
function bumpedPackage(deb: string, dir: string): { file: string; version: string } {
  const tree = join(dir, 'repack');
  execFileSync('dpkg-deb', ['-R', deb, tree]);
  const control = join(tree, 'DEBIAN/control');
  const old = /^Version: (.+)$/m.exec(readFileSync(control, 'utf8'))![1]!;
  const version = `${old}+ci1`;
  writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .+$/m, `Version: ${version}`));
  const file = join(dir, `execgate_${version}_${DEB_ARCH}.deb`);
  // gzip -1: the test's copy only needs to be a valid package, fast.
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '--build', tree, file], { stdio: 'ignore' });
  rmSync(tree, { recursive: true, force: true });
  return { file, version };
}

function clusterFile(): string {
  return stringify({
    cluster: 'ci-install',
    vip: { address: VIP, prefixLength: 24, interface: 'eth0' },
    leadership: { source: 'static' },
    gateway: {
      hostKeys: ['/etc/execgate/host-keys/ssh_host_ed25519_key', '/etc/execgate/host-keys/ssh_host_rsa_key'],
      authorizedKeys: '/etc/execgate/authorized_keys/%u',
      runAs: { user: SSH_USER },
      audit: { path: '/var/log/execgate/audit.jsonl' },
    },
    nodes: [{ name: GW.name, address: GW.address, priority: 150, sshPort: GW.sshPort, httpPort: GW.httpPort }],
  });
}

/** ExecStart of a rendered unit as argv (execgate's renderer never quotes). */
function execStart(unit: string): string[] {
  const line = /^ExecStart=(.+)$/m.exec(unit);
  if (!line) throw new Error(`no ExecStart in the unit:\n${unit}`);
  return line[1]!.trim().split(/\s+/);
}

interface Served {
  proc: ChildProcess;
  out: () => string;
  stop: () => Promise<number | null>;
}

/** The gateway as systemd would start it: the unit's ExecStart, in the root, in the gateway's namespace. */
async function serve(lab: NetnsLab, ns: string, root: DebianRoot, argv: string[]): Promise<Served> {
  const proc = lab.spawn(ns, root.argv(argv));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('"msg":"execgate listening"')) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the installed gateway exited (${proc.exitCode ?? proc.signalCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`the installed gateway did not listen within 30 s:\n${out}`);
    await sleep(50);
  }
  return {
    proc,
    out: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

function ssh(lab: NetnsLab, clientNs: string, key: string, knownHosts: string, command: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      clientNs,
      'ssh',
      '-i',
      key,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'ConnectTimeout=10',
      '-o',
      'LogLevel=ERROR',
      '-p',
      String(GW.sshPort),
      `${SSH_USER}@${GW.address}`,
      command,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

for (const suite of SUITES) {
  describe(`install the package on a fresh Debian ${suite} root`, () => {
    if (missing.length) {
      if (required) it('has its prerequisites', () => expect.fail(`EXECGATE_REQUIRE_LAB=1 but missing: ${missing.join(', ')}`));
      else it.skip(`skipped: missing ${missing.join(', ')}`, () => {});
      return;
    }

    it('apt installs it, install.sh sets up a one-node cluster, the unit command serves OpenSSH, doctor passes, an upgrade keeps config, keys and audit log', async () => {
      const t0 = Date.now();
      const marks: string[] = [];
      const mark = (what: string, since: number) => marks.push(`${what} ${((Date.now() - since) / 1000).toFixed(1)} s`);
      const host = mkdtempSync(join(tmpdir(), `execgate-install-${suite}-`));
      const lab = new NetnsLab(uniquePrefix('in'));
      let root: DebianRoot | null = null;
      const served: Served[] = [];
      let failure: unknown = null;
      let problems: string[];
      try {
        let t = Date.now();
        const pkg = debPackage();
        if (pkg.buildMs !== null && !packageReported) marks.push(`npm run package ${(pkg.buildMs / 1000).toFixed(1)} s`);
        packageReported = true;
        t = Date.now();
        root = DebianRoot.fresh(suite, host);
        const builtMs = rootsBuilt.get(suite);
        marks.push(builtMs === undefined ? `cache hit (${CACHE}/roots/${suite}.tar)` : `cache miss: debootstrap + tar ${(builtMs / 1000).toFixed(1)} s (beside the package build)`);
        marks.push(`root copy (tar -x) ${(root.timings.extractMs / 1000).toFixed(1)} s`);
        t = Date.now();
        root.prepare();
        mark('mounts', t);

        // 1. The package's Depends and what install.sh adds, fetched from the mirror in the host's
        //    namespace (the only network step); everything that runs a maintainer script or
        //    install.sh runs in the gateway's private namespace, offline.
        t = Date.now();
        root.run(['apt-get', 'update', '-q']);
        mark('apt-get update', t);
        mkdirSync(root.path('root/ci'), { recursive: true });
        copyFileSync(pkg.file, root.path('root/ci/execgate.deb'));
        t = Date.now();
        root.run(['apt-get', 'install', '-y', '-q', '--download-only', '--no-install-recommends', '/root/ci/execgate.deb', 'keepalived', 'curl', 'logrotate']);
        mark('apt-get --download-only', t);

        // 2. install.sh: the package through apt-get, then the one-node cluster.
        lab.up();
        const gw = lab.addHost(GW.name, GW.address);
        const client = lab.addHost(CLIENT.name, CLIENT.address);
        writeFileSync(root.path('root/ci/cluster.yaml'), clusterFile());
        const clientKey = join(host, 'id_ed25519');
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
        copyFileSync(`${clientKey}.pub`, root.path('root/ci/authorized_keys'));
        copyFileSync(INSTALL_SH, root.path('root/ci/install.sh'));
        // One host key set for the cluster, made once, before install (execgate keygen; here the
        // package's own, unpacked: the node has nothing installed yet).
        root.run(['dpkg-deb', '-x', '/root/ci/execgate.deb', '/root/ci/unpacked']);
        const keygen = root.run([
          '/root/ci/unpacked/opt/execgate/node/bin/node',
          '/root/ci/unpacked/opt/execgate/dist/src/cli.js',
          'keygen',
          '--cluster',
          '/root/ci/cluster.yaml',
          '--dir',
          '/root/ci/host-keys',
        ]);
        expect(keygen.stdout).toContain('ssh_host_ed25519_key');
        t = Date.now();
        const install = root.run(
          [
            'bash',
            '/root/ci/install.sh',
            '--package',
            '/root/ci/execgate.deb',
            '--cluster',
            '/root/ci/cluster.yaml',
            '--node',
            GW.name,
            '--host-keys',
            '/root/ci/host-keys',
            '--authorized-keys',
            '/root/ci/authorized_keys',
            '--ssh-user',
            SSH_USER,
          ],
          { netns: gw.ns, allowFail: true },
        );
        mark('install.sh (apt-get install, offline)', t);
        const installOut = `${install.stdout}${install.stderr}`;
        expect(install.status, `install.sh:\n${installOut}`).toBe(0);
        expect(installOut).toMatch(/Setting up execgate \(/);
        expect(installOut).toContain(`creating the account ${SSH_USER}`); // the cluster file's runAs.user
        expect(installOut).toMatch(/systemd is not running here.*skipped: systemctl/); // says why it skips systemctl
        const installed = root.run(['dpkg-query', '-W', '-f=${Version} ${Status}', 'execgate']).stdout;
        expect(installed).toMatch(/ install ok installed$/);
        const installedVersion = installed.split(' ')[0]!;
        expect(root.run(['getent', 'passwd', SSH_USER], { allowFail: true }).status).toBe(0);
        const unit = readFileSync(root.path('etc/systemd/system/execgate.service'), 'utf8');
        const argv = execStart(unit);
        expect(argv.slice(0, 2)).toEqual(['/opt/execgate/node/bin/node', '/opt/execgate/dist/src/cli.js']);
        expect(statSync(root.path('etc/execgate/host-keys/ssh_host_ed25519_key')).mode & 0o077).toBe(0);

        // 3. The installed gateway, started like systemd would (boot applies the package's sysctl).
        lab.exec(gw.ns, ['sysctl', '-q', '-p', root.path('usr/lib/sysctl.d/60-execgate.conf')]);
        t = Date.now();
        const first = await serve(lab, gw.ns, root, argv);
        served.push(first);
        mark('gateway start', t);
        const crypto = first
          .out()
          .split('\n')
          .find((l) => l.includes('ssh2 crypto:'));
        expect(crypto, first.out()).toMatch(/"ssh2Crypto":"native"/);
        const metrics = lab.exec(client.ns, ['curl', '-sf', '--max-time', '10', `http://${GW.address}:${GW.httpPort}/metrics`]);
        expect(metrics).toMatch(new RegExp(`^execgate_build_info\\{version="${installedVersion.replace(/[.+]/g, '\\$&')}",ssh2_crypto="native",node="${GW.name}"\\} 1$`, 'm'));
        // known_hosts as keygen wrote it: strict host key checking against the cluster's keys.
        const knownHosts = join(host, 'known_hosts');
        copyFileSync(root.path('root/ci/host-keys/known_hosts'), knownHosts);
        t = Date.now();
        const r1 = ssh(lab, client.ns, clientKey, knownHosts, 'id -un; cat /etc/debian_version; echo to-stderr >&2; exit 7');
        mark('ssh command', t);
        expect(r1.stderr).toContain('to-stderr');
        expect(r1.code, r1.stderr).toBe(7);
        const [who, debian] = r1.stdout.trim().split('\n');
        expect(who).toBe(SSH_USER);
        expect(debian).toMatch(suite === 'bookworm' ? /^12\./ : /^13\./);

        t = Date.now();
        const doctor = root.run(['execgate', 'doctor', '--cluster', '/etc/execgate/cluster.yaml', '--node', GW.name], { netns: gw.ns, allowFail: true });
        mark('doctor', t);
        expect(doctor.status, `doctor:\n${doctor.stdout}${doctor.stderr}`).toBe(0);
        expect(doctor.stdout).toMatch(/^ssh2 crypto\s+\/opt\/execgate\/node\/bin\/node \+ \/opt\/execgate\s+OK\s+native binding loads/m);
        expect(doctor.stdout).toMatch(/^systemd unit\s+\S+\s+OK/m);
        expect(doctor.stdout).toMatch(/^leaders\s+cluster\s+OK\s+one leader: gw1/m);
        expect(await first.stop()).toBe(0);

        // 4. Upgrade: what the operator made must survive, byte for byte.
        const kept = [
          'etc/execgate/cluster.yaml',
          'etc/execgate/host-keys/ssh_host_ed25519_key',
          'etc/execgate/host-keys/ssh_host_rsa_key',
          `etc/execgate/authorized_keys/${SSH_USER}`,
          'etc/execgate/http-token',
          'var/log/execgate/audit.jsonl',
        ];
        const before = Object.fromEntries(kept.map((p) => [p, sha256(root!.path(p))]));
        const auditBefore = readFileSync(root.path('var/log/execgate/audit.jsonl'), 'utf8');
        expect(auditBefore).toContain('"exitCode":7');
        t = Date.now();
        const bumped = bumpedPackage(pkg.file, host);
        mark(`repack as ${bumped.version}`, t);
        copyFileSync(bumped.file, root.path('root/ci/execgate-next.deb'));
        t = Date.now();
        const upgrade = root.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', '/root/ci/execgate-next.deb'], { netns: gw.ns });
        mark('upgrade (apt-get install)', t);
        expect(upgrade.stdout).toContain(`Unpacking execgate (${bumped.version}) over (${installedVersion})`);
        expect(root.run(['dpkg-query', '-W', '-f=${Version}', 'execgate']).stdout).toBe(bumped.version);
        expect(Object.fromEntries(kept.map((p) => [p, sha256(root!.path(p))]))).toEqual(before);
        const second = await serve(lab, gw.ns, root, execStart(readFileSync(root.path('etc/systemd/system/execgate.service'), 'utf8')));
        served.push(second);
        const r2 = ssh(lab, client.ns, clientKey, knownHosts, 'echo after-upgrade');
        expect(r2, r2.stderr).toMatchObject({ code: 0, stdout: 'after-upgrade\n' });
        expect(await second.stop()).toBe(0);
        const auditAfter = readFileSync(root.path('var/log/execgate/audit.jsonl'), 'utf8');
        expect(auditAfter.startsWith(auditBefore)).toBe(true);
        expect(auditAfter.slice(auditBefore.length)).toContain('after-upgrade');
        mark('total', t0);
        figures.push(`${suite}: ${marks.join(', ')}`);
      } catch (err) {
        failure = err;
      } finally {
        // Everything released on every path: our processes, namespaces, mounts, the copy.
        for (const s of served) await s.stop().catch(() => null);
        await lab.teardown();
        problems = [...(root?.teardown() ?? []), ...lab.leftovers().map((ns) => `namespace ${ns} left`)];
        if (!problems.some((p) => p.startsWith('still mounted'))) rmSync(host, { recursive: true, force: true });
      }
      if (failure) throw failure;
      expect(problems).toEqual([]);
    }, 900_000); // warm about 1.5 min; cold (debootstrap) up to 6 min on a busy 2-core host
  });
}
