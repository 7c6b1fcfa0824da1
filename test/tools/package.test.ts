import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { labIt } from '../helpers/lab.js';
import { DEB_ARCH, debPackage } from '../helpers/debPackage.js';

/**
 * The Debian package (npm run package, deploy/package/build.sh), built once: reused when
 * artifacts/execgate_<version>_<arch>.deb is newer than everything it is built from,
 * else built here (about 2 minutes). EXECGATE_PACKAGE_DEB=FILE tests that file instead.
 * Checked: what dpkg -c lists (expected paths, no build leftovers, no dev dependencies),
 * the control fields and maintainer scripts, lintian (no errors), and that the bundled
 * Node runs the bundled native modules and the CLI.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const pkgJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
const NODE_VERSION = /^node_version=(\S+)$/m.exec(readFileSync(join(ROOT, 'deploy/package/node-runtime'), 'utf8'))![1]!;
const sh = (cmd: string, args: string[], opts: { cwd?: string; timeout?: number } = {}) => spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
const has = (cmd: string, args = ['--version']) => sh(cmd, args).status === 0;

let deb: string;
let listing: string[]; // dpkg -c paths, without the leading "."
let work: string;
let unpacked: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'execgate-package-'));
  deb = debPackage().file; // built here unless artifacts/ has one newer than its sources
  expect(existsSync(deb), deb).toBe(true);
  const c = sh('dpkg', ['-c', deb]);
  expect(c.status, c.stderr).toBe(0);
  listing = c.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const m = /^(\S+) (\S+)\s+\d+ \S+ \S+ \.(\/.*?)(?: -> .*)?$/.exec(l);
      expect(m, l).not.toBeNull();
      expect(m![2], `${m![3]} owner`).toBe('root/root');
      return m![3]!.replace(/\/$/, '') || '/';
    });
  unpacked = join(work, 'root');
  const x = sh('dpkg-deb', ['-x', deb, unpacked]);
  expect(x.status, x.stderr).toBe(0);
}, 900_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('execgate Debian package', () => {
  it('holds the runtime, dist, production modules, wrapper and snippets; nothing left from the build', () => {
    const files = new Set(listing);
    for (const p of [
      '/opt/execgate/node/bin/node',
      '/opt/execgate/node/LICENSE',
      '/opt/execgate/dist/src/cli.js',
      '/opt/execgate/package.json',
      '/opt/execgate/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
      '/opt/execgate/node_modules/cpu-features/build/Release/cpufeatures.node',
      '/opt/execgate/node_modules/node-pty/build/Release/pty.node',
      '/usr/bin/execgate',
      '/usr/lib/tmpfiles.d/execgate.conf',
      '/usr/lib/sysctl.d/60-execgate.conf',
      '/etc/logrotate.d/execgate',
      '/usr/share/doc/execgate/copyright',
      '/usr/share/doc/execgate/changelog.gz',
      '/usr/share/doc/execgate/examples/cluster.yaml',
      '/usr/share/doc/execgate/examples/execgate.service',
    ])
      expect(files.has(p), p).toBe(true);
    for (const dep of Object.keys(pkgJson.dependencies)) expect(files.has(`/opt/execgate/node_modules/${dep}/package.json`), dep).toBe(true);
    // Only production dependencies: nothing the lockfile marks dev-only.
    const dev = Object.entries(lock.packages)
      .filter(([k, v]) => k.startsWith('node_modules/') && v.dev)
      .map(([k]) => `/opt/execgate/${k}`);
    expect(dev.length).toBeGreaterThan(10);
    for (const d of dev) expect(files.has(d), `dev dependency ${d}`).toBe(false);
    const leftovers = listing.filter(
      (p) =>
        /\/(test|tests|__tests__|obj\.target|\.deps|node_gyp_bins|\.cache|\.npm|\.github|\.husky|coverage)(\/|$)/.test(p) ||
        /\.(ts|mts|cts|map|o|a|gyp|gypi|mk|cc|cpp|c|h|tsbuildinfo)$/.test(p) ||
        /\/(Makefile|binding\.gyp|config\.gypi|package-lock\.json|\.package-lock\.json)$/.test(p) ||
        /^\/opt\/execgate\/(dist\/(test|bench|deploy)|patches|src|bench|test|docs)(\/|$)/.test(p) ||
        /\/prebuilds\/(darwin|win32)/.test(p),
    );
    expect(leftovers).toEqual([]);
    // One runtime and one CLI: dist/ holds src/ only; the ssh2 patch is applied in the packaged tree.
    expect(readdirSync(join(unpacked, 'opt/execgate/dist'))).toEqual(['src']);
    expect(readFileSync(join(unpacked, 'opt/execgate/node_modules/ssh2/lib/client.js'), 'utf8')).toContain('execgate: resume stdout and stderr');
    expect(readFileSync(join(unpacked, 'usr/bin/execgate'), 'utf8')).toMatch(/^exec \/opt\/execgate\/node\/bin\/node \/opt\/execgate\/dist\/src\/cli\.js "\$@"$/m);
    expect(readFileSync(join(unpacked, 'usr/lib/sysctl.d/60-execgate.conf'), 'utf8')).toMatch(/^net\.ipv4\.ip_nonlocal_bind = 1$/m);
    expect(readFileSync(join(unpacked, 'usr/lib/tmpfiles.d/execgate.conf'), 'utf8')).toMatch(/^d \/run\/execgate 0755 root root -$/m);
    // The unit a cluster file renders runs the package's own runtime.
    expect(readFileSync(join(unpacked, 'usr/share/doc/execgate/examples/execgate.service'), 'utf8')).toMatch(/^ExecStart=\/opt\/execgate\/node\/bin\/node \/opt\/execgate\/dist\/src\/cli\.js serve /m);
    // State the size (the closing note quotes it).
    console.log(`package: ${deb}: ${(statSync(deb).size / 1048576).toFixed(1)} MiB, ${listing.length} entries`);
  });

  it('control fields, conffiles and maintainer scripts that never start the gateway', () => {
    const field = (name: string) => sh('dpkg-deb', ['-f', deb, name]).stdout.trim();
    expect(field('Package')).toBe('execgate');
    expect(field('Version')).toBe(process.env.EXECGATE_PACKAGE_DEB ? field('Version') : pkgJson.version);
    expect(field('Architecture')).toBe(DEB_ARCH);
    expect(field('Maintainer')).toMatch(/^.+ <[^@\s]+@[^@\s]+>$/);
    expect(Number(field('Installed-Size'))).toBeGreaterThan(50_000);
    const depends = field('Depends');
    for (const d of [/\blibc6 \(>= 2\.\d+\)/, /\blibstdc\+\+6\b/, /\bpasswd\b/, /\butil-linux \(>= 2\.32\)/, /\bopenssh-client\b/, /\bopenssh-sftp-server\b/]) expect(depends).toMatch(d);
    expect(depends).not.toMatch(/\bnodejs\b|\bkeepalived\b|\bhaproxy\b/); // per role: Recommends/Suggests
    expect(field('Recommends')).toMatch(/\bkeepalived\b.*\bcurl\b/);
    expect(field('Suggests')).toMatch(/\bhaproxy\b.*\betcd-server\b/);
    const control = join(work, 'control');
    expect(sh('dpkg-deb', ['-e', deb, control]).status).toBe(0);
    expect(readFileSync(join(control, 'conffiles'), 'utf8')).toBe('/etc/logrotate.d/execgate\n');
    for (const s of ['postinst', 'prerm', 'postrm']) {
      expect(statSync(join(control, s)).mode & 0o777, s).toBe(0o755);
      // Commands only (comments and echoed advice are not run).
      const text = readFileSync(join(control, s), 'utf8').replace(/^\s*(#|echo ).*$/gm, '');
      expect(text, `${s} starts or restarts the gateway`).not.toMatch(/\b(deb-systemd-invoke|systemctl|invoke-rc\.d|service)\s+(-\S+\s+)*(start|restart|try-restart|reload-or-restart|enable)\b/);
      expect(text).toMatch(/^set -e$/m);
    }
    const postinst = readFileSync(join(control, 'postinst'), 'utf8');
    for (const d of ['/etc/execgate 0750', '/etc/execgate/host-keys 0700', '/var/lib/execgate 0700', '/var/log/execgate 0750']) expect(postinst).toContain(`dir ${d}`);
    expect(postinst).toMatch(/useradd --system .*\n?.* keepalived_script/);
    expect(readFileSync(join(control, 'postrm'), 'utf8')).toMatch(/^purge\)\n[\s\S]*rm -rf \/etc\/execgate \/var\/lib\/execgate \/var\/log\/execgate/m);
  });

  labIt(
    'lintian reports no errors',
    has('lintian') ? null : 'lintian (bash .ci/install-debian-packages)',
    async () => {
      const r = sh('lintian', ['--fail-on', 'error', '--no-tag-display-limit', deb], { timeout: 600_000 });
      const tags = (r.stdout + r.stderr).split('\n').filter((l) => /^[EWIPX]: /.test(l));
      console.log(`lintian:\n${tags.join('\n') || '(no tags)'}`);
      expect(tags.filter((l) => l.startsWith('E: '))).toEqual([]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    },
    600_000,
  );

  it('the bundled node is the pinned Node 20 and runs the bundled sshcrypto.node, cpu-features, node-pty and the CLI', () => {
    const opt = join(unpacked, 'opt/execgate');
    const node = join(opt, 'node/bin/node');
    expect(sh(node, ['--version']).stdout.trim()).toBe(`v${NODE_VERSION}`);
    expect(NODE_VERSION.split('.')[0]).toBe(process.versions.node.split('.')[0]);
    const script = `
      const { createRequire } = require('node:module');
      const r = createRequire(${JSON.stringify(`${opt}/`)});
      const crypto = r('ssh2/lib/protocol/crypto.js');
      const binding = r('./node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
      // Encrypt one packet with the native chacha20-poly1305 and check the tag changes with the key.
      const seal = (k) => { const c = new binding.ChaChaPolyCipher(Buffer.alloc(64, k)); const p = Buffer.alloc(4 + 16 + 16); p.writeUInt32BE(16, 0); c.encrypt(p, 0); return p.toString('hex'); };
      const cpu = r('cpu-features')();
      r('node-pty');
      console.log(JSON.stringify({ modules: process.versions.modules, bindingAvailable: crypto.bindingAvailable, a: seal(1), b: seal(2), arch: cpu.arch }));
    `;
    const r = sh(node, ['-e', script]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { modules: string; bindingAvailable: boolean; a: string; b: string; arch: string };
    expect(out.modules).toBe(process.versions.modules); // Node 20: ABI 115, same as this host's
    expect(out.bindingAvailable).toBe(true);
    expect(out.a).toMatch(/^[0-9a-f]{72}$/);
    expect(out.a).not.toBe(out.b);
    expect(out.arch).not.toBe('');
    // The CLI runs on the bundled runtime with only the packaged modules.
    const cli = sh(node, [join(opt, 'dist/src/cli.js'), 'render', 'systemd', '--cluster', join(ROOT, 'deploy/example-cluster.yaml'), '--node', 'gw1'], { cwd: work });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('ExecStart=/opt/execgate/node/bin/node /opt/execgate/dist/src/cli.js serve');
  });

  labIt('the maintainer scripts and the wrapper pass shellcheck', has('shellcheck') ? null : 'shellcheck', async () => {
    const r = sh('shellcheck', ['-s', 'sh', ...['postinst', 'prerm', 'postrm', 'execgate'].map((f) => join(ROOT, 'deploy/package/debian', f))]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
