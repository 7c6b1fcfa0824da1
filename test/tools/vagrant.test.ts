import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadClusterFile } from '../../src/config/clusterLoad.js';
import { renderKeepalived } from '../../src/render/keepalived.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { labIt } from '../helpers/lab.js';

/**
 * The Vagrant lab (issue 9). No hypervisor exists here, so nothing boots: `vagrant
 * validate` checks the Vagrantfile, and a Ruby stand-in for Vagrant's configuration
 * API records what every VM would get (box, network, sizes, provisioners) so it can be
 * checked against deploy/example-cluster.yaml and the files in this checkout.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const EXAMPLE = join(ROOT, 'deploy/example-cluster.yaml');
const GUEST_SRC = '/vagrant';
const GUEST_LAB = '/var/lib/execgate-lab';

const has = (cmd: string, args: string[] = ['--version']) => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
const missingVagrant = has('vagrant') ? null : 'the vagrant command (Debian package vagrant: bash .ci/install-debian-packages)';
const missingRuby = has('ruby') ? null : 'ruby (installed with Debian vagrant)';

/** Records Vagrant.configure calls; prints them as JSON; with "prepare", runs the triggers' Ruby blocks. */
const STUB = String.raw`
require 'json'
$global = nil
class Setter
  def initialize(h) @h = h end
  def method_missing(n, *a)
    s = n.to_s
    raise NoMethodError, "unknown provider option #{s}" unless s.end_with?('=')
    @h[s.chomp('=')] = a.first
  end
  def respond_to_missing?(*) true end
end
class TriggerRec
  attr_accessor :info, :name, :warn, :on_error, :run, :run_remote
  attr_reader :ruby_block
  def ruby(&b) @ruby_block = b end
end
class Trigger
  attr_reader :list
  def initialize; @list = [] end
  def before(*c, &b) t = TriggerRec.new; b.call(t); @list << { when: 'before', commands: c.flatten.map(&:to_s), rec: t } end
  def after(*c, &b) t = TriggerRec.new; b.call(t); @list << { when: 'after', commands: c.flatten.map(&:to_s), rec: t } end
end
class VM
  attr_accessor :box, :hostname, :box_check_update
  attr_reader :networks, :provisions, :synced, :providers, :defines
  def initialize; @networks = []; @provisions = []; @synced = []; @providers = {}; @defines = [] end
  def network(type, **o) @networks << { type: type.to_s }.merge(o) end
  def provision(name, **o) @provisions << { name: name.to_s }.merge(o) end
  def synced_folder(h, g, **o) @synced << { host: h, guest: g }.merge(o) end
  def provider(name) h = (@providers[name.to_s] ||= {}); yield Setter.new(h) if block_given? end
  def define(name, **o) c = Cfg.new; yield c; @defines << { name: name.to_s, options: o, config: c } end
end
class Cfg
  attr_reader :vm, :trigger
  def initialize; @vm = VM.new; @trigger = Trigger.new end
end
module Vagrant
  def self.require_version(*) end
  def self.configure(_v) c = Cfg.new; yield c; $global = c end
end
load ARGV[0]
vm = $global.vm
$global.trigger.list.each { |t| t[:rec].ruby_block.call(nil, nil) } if ARGV[1] == 'prepare'
puts JSON.generate(
  global: { synced: vm.synced, provisions: vm.provisions, box_check_update: vm.box_check_update,
            triggers: $global.trigger.list.map { |t| { when: t[:when], commands: t[:commands], ruby: !t[:rec].ruby_block.nil?, run: t[:rec].run, run_remote: t[:rec].run_remote } } },
  machines: vm.defines.map { |d| m = d[:config].vm; { name: d[:name], options: d[:options], box: m.box, hostname: m.hostname, networks: m.networks, provisions: m.provisions, synced: m.synced, providers: m.providers } })
`;

interface Provision {
  name: string;
  type: string;
  path?: string;
  inline?: string;
  args?: string[];
}
interface Machine {
  name: string;
  box: string;
  hostname: string;
  networks: Array<{ type: string; ip?: string; netmask?: string; guest?: number; host?: number; host_ip?: string }>;
  provisions: Provision[];
  providers: Record<string, { cpus?: number; memory?: number }>;
}
interface Plan {
  global: {
    synced: Array<{ host: string; guest: string; type?: string; create?: boolean; rsync__exclude?: string[] }>;
    provisions: Provision[];
    box_check_update: boolean;
    triggers: Array<{ when: string; commands: string[]; ruby: boolean; run: unknown; run_remote: unknown }>;
  };
  machines: Machine[];
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'execgate-vagrant-'));
  writeFileSync(join(work, 'stub.rb'), STUB);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Environment for vagrant and the stub: nothing from the caller's lab settings, no network, no plugins. */
function labEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('EXECGATE_LAB_') && !k.startsWith('VAGRANT_')) env[k] = v;
  return {
    ...env,
    VAGRANT_HOME: join(work, 'vagrant-home'),
    VAGRANT_DOTFILE_PATH: join(work, 'dot'),
    VAGRANT_CHECKPOINT_DISABLE: '1',
    VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1',
    VAGRANT_NO_PLUGINS: '1',
    // Any attempt to reach the network (box or plugin downloads) fails at once.
    http_proxy: 'http://127.0.0.1:9',
    https_proxy: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    ...extra,
  };
}

function plan(extra: Record<string, string> = {}, prepare = false): Plan {
  const r = spawnSync('ruby', [join(work, 'stub.rb'), join(ROOT, 'Vagrantfile'), ...(prepare ? ['prepare'] : [])], {
    cwd: ROOT,
    encoding: 'utf8',
    env: labEnv(extra),
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Plan;
}

const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const maskOf = (prefix: number) => [24, 16, 8, 0].map((s) => ((prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0) >>> s) & 255).join('.');

function vagrantValidate(extra: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync('vagrant', ['validate', '--ignore-provider'], { cwd: ROOT, encoding: 'utf8', env: labEnv(extra), timeout: 60_000 });
}

describe('Vagrantfile', () => {
  labIt('vagrant validate --ignore-provider passes, with and without the lb VM, and downloads nothing', missingVagrant, async () => {
    for (const lb of ['0', '1']) {
      const r = vagrantValidate({ EXECGATE_LAB_LB: lb });
      expect(r.stdout + r.stderr).toMatch(/Vagrantfile validated successfully/);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      for (const vm of ['gw1', 'gw2', 'gw3', 'rundeck', ...(lb === '1' ? ['lb'] : [])]) expect(r.stdout).toContain(`==> ${vm}:`);
      if (lb === '0') expect(r.stdout).not.toContain('==> lb:');
    }
    const boxes = join(work, 'vagrant-home', 'boxes');
    expect(existsSync(boxes) ? readdirSync(boxes) : []).toEqual([]);
    // validate itself must not run the host-side preparation (keys, lab cluster file)
    expect(existsSync(join(work, 'dot', 'execgate-lab', 'cluster.yaml'))).toBe(false);
  });

  labIt('vagrant validate refuses a provisioning script that does not exist (so it really checks paths)', missingVagrant, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'execgate-vagrant-bad-'));
    try {
      writeFileSync(join(dir, 'Vagrantfile'), "Vagrant.configure('2') { |c| c.vm.box = 'x/y'; c.vm.provision 'shell', path: 'deploy/nope.sh' }\n");
      const r = spawnSync('vagrant', ['validate', '--ignore-provider'], { cwd: dir, encoding: 'utf8', env: labEnv() });
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/nope\.sh/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  labIt('node names and addresses come from deploy/example-cluster.yaml; one private network; sizes and boxes from the environment', missingRuby, async () => {
    const c = loadClusterFile(EXAMPLE);
    for (const lb of [false, true]) {
      const p = plan({ EXECGATE_LAB_LB: lb ? '1' : '0' });
      const names = p.machines.map((m) => m.name);
      expect(names).toEqual([...c.nodes.map((n) => n.name), ...(lb ? ['lb'] : []), 'rundeck']);
      const taken = new Set([c.vip.address, ...c.nodes.map((n) => n.address), ...c.loadBalancers]);
      for (const m of p.machines) {
        const priv = m.networks.filter((n) => n.type === 'private_network');
        expect(priv, m.name).toHaveLength(1);
        expect(priv[0]!.netmask).toBe(maskOf(c.vip.prefixLength));
        const node = c.nodes.find((n) => n.name === m.name);
        if (node) expect(priv[0]!.ip).toBe(node.address);
        else if (m.name === 'lb') expect(priv[0]!.ip).toBe(c.loadBalancers[0]);
        else {
          expect(taken.has(priv[0]!.ip!)).toBe(false);
          const mask = ipToInt(maskOf(c.vip.prefixLength));
          expect((ipToInt(priv[0]!.ip!) & mask) >>> 0).toBe((ipToInt(c.vip.address) & mask) >>> 0);
        }
        expect(m.hostname).toBe(m.name);
        expect(Object.keys(m.providers).sort()).toEqual(['libvirt', 'virtualbox']);
      }
      const rd = p.machines.find((m) => m.name === 'rundeck')!;
      expect(rd.networks).toContainEqual(expect.objectContaining({ type: 'forwarded_port', guest: 4440, host: 4440, host_ip: '127.0.0.1' }));
    }
    const sized = plan({
      EXECGATE_LAB_BOX: 'example/gw-box',
      EXECGATE_LAB_RUNDECK_BOX: 'example/rd-box',
      EXECGATE_LAB_CPUS: '3',
      EXECGATE_LAB_MEMORY: '1536',
      EXECGATE_LAB_RUNDECK_CPUS: '4',
      EXECGATE_LAB_RUNDECK_MEMORY: '4096',
    });
    for (const m of sized.machines) {
      const want = m.name === 'rundeck' ? { box: 'example/rd-box', cpus: 4, memory: 4096 } : { box: 'example/gw-box', cpus: 3, memory: 1536 };
      expect(m.box).toBe(want.box);
      for (const provider of ['libvirt', 'virtualbox']) expect(m.providers[provider]).toEqual({ cpus: want.cpus, memory: want.memory });
    }
    // No second copy of the cluster in the Vagrantfile: no addresses, no node names.
    const text = readFileSync(join(ROOT, 'Vagrantfile'), 'utf8').replace(/^\s*#.*$/gm, '');
    expect(text.match(/\b\d{1,3}(\.\d{1,3}){3}\b/g) ?? []).toEqual(['255.255.255.255', '127.0.0.1']);
    for (const n of c.nodes) expect(text).not.toContain(n.name);
    expect(text).toContain("'deploy', 'example-cluster.yaml'");
  });

  labIt('every VM is provisioned only by deploy/install.sh or deploy/lab/vagrant/*.sh, with files that exist in the repo', missingRuby, async () => {
    const c = loadClusterFile(EXAMPLE);
    const p = plan({ EXECGATE_LAB_LB: '1' });
    expect(p.global.provisions).toEqual([]);
    expect(p.global.box_check_update).toBe(false);
    for (const t of p.global.triggers) {
      expect(t.ruby).toBe(true); // host-side preparation only; no shell commands on host or guest
      expect(t.run).toBeNull();
      expect(t.run_remote).toBeNull();
    }
    expect(p.global.synced).toContainEqual(expect.objectContaining({ host: '.', guest: GUEST_SRC, type: 'rsync' }));
    expect(p.global.synced).toContainEqual(expect.objectContaining({ guest: GUEST_LAB, type: 'rsync', create: true }));

    /** Every file a provisioning script takes from the checkout ("$source_dir/..." or "$here/..."). */
    const referenced = (script: string) => {
      const text = readFileSync(join(ROOT, script), 'utf8');
      return [...text.matchAll(/"\$(?:source_dir|here)\/([^"$]+)"/g)].map((m) => m[1]!).filter((f) => !f.startsWith('dist/') && f !== 'node_modules' && f !== 'package.json');
    };
    for (const m of p.machines) {
      expect(m.provisions.length, m.name).toBeGreaterThan(0);
      for (const prov of m.provisions) {
        expect(prov.type, `${m.name}: ${prov.name}`).toBe('shell');
        expect(prov.inline, `${m.name}: no inline scripts`).toBeUndefined();
        const path = prov.path!;
        expect(path === 'deploy/install.sh' || /^deploy\/lab\/vagrant\/[\w.-]+\.sh$/.test(path), `${m.name}: ${path}`).toBe(true);
        expect(existsSync(join(ROOT, path)), path).toBe(true);
        for (const f of referenced(path)) expect(existsSync(join(ROOT, f)), `${path} uses ${f}`).toBe(true);
        const args = prov.args ?? [];
        const flag = (name: string) => args[args.indexOf(name) + 1];
        expect(flag('--source')).toBe(GUEST_SRC);
        for (const a of args) {
          if (a.startsWith(`${GUEST_SRC}/`)) expect(existsSync(join(ROOT, a.slice(GUEST_SRC.length))), a).toBe(true);
          if (a.startsWith('/') && a !== GUEST_SRC) expect(a.startsWith(`${GUEST_LAB}/`) || a === GUEST_LAB, `${m.name}: ${a} is neither the checkout nor the lab dir`).toBe(true);
        }
        const node = c.nodes.find((n) => n.name === m.name);
        if (node) {
          expect(path).toBe('deploy/install.sh');
          expect(flag('--node')).toBe(node.name);
          expect(flag('--cluster')).toBe(`${GUEST_LAB}/cluster.yaml`);
          expect(flag('--host-keys')).toBe(`${GUEST_LAB}/host-keys`);
          expect(args).toContain('--etcd-member');
          expect(flag('--etcd-certs')).toBe(`${GUEST_LAB}/etcd-certs`);
          // etcd-setup once, on the last gateway (the members form their quorum meanwhile).
          expect(args.includes('--etcd-setup')).toBe(node.name === c.nodes.at(-1)!.name);
          expect(flag('--sshd-not-on')).toBe(c.vip.address);
        } else if (m.name === 'lb') {
          expect(path).toBe('deploy/install.sh');
          expect(flag('--role')).toBe('lb');
          expect(flag('--sshd-not-on')).toBe(c.loadBalancers[0]);
        } else {
          expect(path).toBe('deploy/lab/vagrant/rundeck.sh');
          expect(flag('--vip')).toBe(`execgate-vip=${c.vip.address}:${c.vip.sshPort}`);
          expect(flag('--lb')).toBe(`execgate-lb=${c.loadBalancers[0]}:${c.haproxy.sshPort}`);
          const runonce = args.flatMap((a, i) => (args[i - 1] === '--runonce' ? [a] : []));
          expect(runonce).toEqual(c.nodes.map((n) => `${n.name}=${n.address}:${n.sshPort}`));
        }
      }
    }
    // the drill's helpers on the rundeck VM come from the synced checkout
    const drill = readFileSync(join(ROOT, 'deploy/lab/vagrant-drill.sh'), 'utf8');
    for (const m of drill.matchAll(/(?<![\w/.])\/vagrant\/([\w./-]+\.sh)/g)) expect(existsSync(join(ROOT, m[1]!)), m[1]).toBe(true);
  });

  labIt('the trigger writes the lab cluster (example + 3 overrides), one host key set and a Rundeck key the gateways accept; install.sh --dry-run takes them', missingRuby, async () => {
    expect(existsSync(join(ROOT, 'dist/src/cli.js')), 'npm run build first').toBe(true);
    const dot = join(work, 'prepared');
    const lab = join(dot, 'execgate-lab');
    // What `execgate certs --dir` writes (the trigger runs it only when ca.pem is missing): placeholders, install.sh copies them.
    const certs = join(lab, 'etcd-certs');
    for (const sub of ['gateways', 'etcd']) mkdirSync(join(certs, sub), { recursive: true });
    for (const f of ['ca.pem', 'etcd-password', 'etcd-root-password', ...['gw1', 'gw2', 'gw3'].flatMap((n) => [`gateways/${n}.pem`, `gateways/${n}-key.pem`, `etcd/${n}.pem`, `etcd/${n}-key.pem`])]) {
      writeFileSync(join(certs, f), `placeholder ${f}\n`, { mode: 0o600 });
    }
    const p = plan({ EXECGATE_LAB_LB: '1', VAGRANT_DOTFILE_PATH: dot }, true);
    expect(p.global.synced).toContainEqual(expect.objectContaining({ host: lab, guest: GUEST_LAB }));

    const example = parseYaml(readFileSync(EXAMPLE, 'utf8')) as Record<string, Record<string, unknown>>;
    const derived = parseYaml(readFileSync(join(lab, 'cluster.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    const token = (derived.gateway!.http as { token: string }).token;
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    expect(derived.vip!.interface).toBe('eth1');
    expect(derived.haproxy!.bind).toBe((example.loadBalancers as unknown as string[])[0]);
    const undo = structuredClone(derived);
    undo.vip!.interface = example.vip!.interface;
    (undo.gateway as Record<string, unknown>).http = example.gateway!.http; // the inline token replaces tokenFile
    delete undo.haproxy!.bind;
    expect(undo).toEqual(example);
    const c = loadClusterFile(join(lab, 'cluster.yaml'));
    expect(renderKeepalived(c, 'gw1')).toMatch(/interface eth1\n/);
    expect(renderHaproxy(c)).toContain(`bind ${c.loadBalancers[0]}:${c.haproxy.sshPort}`);

    for (const f of ['ssh_host_ed25519_key', 'ssh_host_rsa_key', 'known_hosts']) expect(existsSync(join(lab, 'host-keys', f)), f).toBe(true);
    for (const f of ['rundeck_rsa', 'http-token', 'cluster.yaml', 'host-keys/ssh_host_rsa_key']) expect(statSync(join(lab, f)).mode & 0o077, `${f} is private`).toBe(0);
    expect(readFileSync(join(lab, 'rundeck_rsa'), 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/); // PEM: every JSch reads it
    const fp = spawnSync('ssh-keygen', ['-l', '-f', join(lab, 'authorized_keys')], { encoding: 'utf8' });
    expect(fp.status, fp.stderr).toBe(0);
    expect(fp.stdout).toMatch(/^3072 SHA256:\S+ rundeck@execgate-lab \(RSA\)/);
    const pub = spawnSync('ssh-keygen', ['-y', '-f', join(lab, 'rundeck_rsa')], { encoding: 'utf8' });
    expect(pub.stdout.trim().split(' ').slice(0, 2)).toEqual(readFileSync(join(lab, 'authorized_keys'), 'utf8').trim().split(' ').slice(0, 2));

    // A second run keeps the keys and the token.
    const before = readFileSync(join(lab, 'rundeck_rsa'), 'utf8') + readFileSync(join(lab, 'host-keys/ssh_host_rsa_key'), 'utf8') + token;
    plan({ EXECGATE_LAB_LB: '1', VAGRANT_DOTFILE_PATH: dot }, true);
    const derived2 = parseYaml(readFileSync(join(lab, 'cluster.yaml'), 'utf8')) as { gateway: { http: { token: string } } };
    expect(readFileSync(join(lab, 'rundeck_rsa'), 'utf8') + readFileSync(join(lab, 'host-keys/ssh_host_rsa_key'), 'utf8') + derived2.gateway.http.token).toBe(before);

    // install.sh --dry-run with exactly the Vagrantfile's arguments (guest paths mapped to the host).
    const host = (a: string) => (a === GUEST_SRC ? ROOT : a.startsWith(`${GUEST_LAB}`) ? lab + a.slice(GUEST_LAB.length) : a);
    for (const m of p.machines.filter((x) => x.provisions[0]!.path === 'deploy/install.sh')) {
      const args = m.provisions[0]!.args!.map(host);
      const r = spawnSync('bash', [join(ROOT, 'deploy/install.sh'), ...args, '--dry-run'], { encoding: 'utf8' });
      expect(r.status, `${m.name}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^\+ apt-get update -q$/m);
      expect(r.stdout).toMatch(/^\+ write \/etc\/ssh\/sshd_config\.d\/60-execgate-listen\.conf/m);
      if (m.name === 'lb') {
        expect(r.stdout).toContain(`+ install -m 0755 ${ROOT}/deploy/haproxy-save-state.sh /usr/local/sbin/execgate-haproxy-save-state`);
        expect(r.stdout).toContain(`+ install -m 0644 ${ROOT}/deploy/haproxy/execgate-state.conf /etc/systemd/system/haproxy.service.d/`);
      } else {
        expect(r.stdout).toContain(`+ install -m 0644 ${lab}/authorized_keys /etc/execgate/authorized_keys/rundeck`);
        expect(r.stdout).toMatch(/^\+ apt-get install -y --no-install-recommends etcd-server$/m);
        expect(r.stdout).toMatch(/^\+ write \/etc\/default\/etcd/m);
        expect(r.stdout).toMatch(/^\+ systemctl restart --no-block etcd\.service$/m);
        expect(r.stdout).toContain(`+ install -m 0600 ${certs}/gateways/${m.name}-key.pem /etc/execgate/etcd/client-key.pem`);
        expect(r.stdout).toContain(`+ install -m 0640 -o root -g etcd ${certs}/etcd/${m.name}-key.pem /etc/etcd/execgate/server-key.pem`);
        expect(r.stdout.indexOf('etcd.service')).toBeLessThan(r.stdout.indexOf('enable --now execgate.service'));
      }
    }
  });
});

describe('install.sh additions for the lab', () => {
  it('--etcd-member derives the member from leadership.etcd.endpoints; refuses a node without one', () => {
    const script = readFileSync(join(ROOT, 'deploy/install.sh'), 'utf8');
    const fn = script.slice(script.indexOf('etcd_env() {'), script.indexOf('\n}\n', script.indexOf('etcd_env() {')) + 3);
    const run = (node: string) =>
      spawnSync('bash', ['-c', `${fn}\netcd_env`], { encoding: 'utf8', env: { ...process.env, node_bin: process.execPath, app: ROOT, source_dir: ROOT, cluster: EXAMPLE, node } });
    const r = run('gw2');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        'ETCD_NAME=gw2',
        'ETCD_DATA_DIR=/var/lib/etcd/execgate',
        'ETCD_LISTEN_PEER_URLS=https://198.18.0.12:2380',
        'ETCD_INITIAL_ADVERTISE_PEER_URLS=https://198.18.0.12:2380',
        'ETCD_LISTEN_CLIENT_URLS=https://198.18.0.12:2379',
        'ETCD_ADVERTISE_CLIENT_URLS=https://198.18.0.12:2379',
        'ETCD_INITIAL_CLUSTER=gw1=https://198.18.0.11:2380,gw2=https://198.18.0.12:2380,gw3=https://198.18.0.13:2380',
        'ETCD_INITIAL_CLUSTER_STATE=new',
        'ETCD_INITIAL_CLUSTER_TOKEN=prod-exec',
        'ETCD_CERT_FILE=/etc/etcd/execgate/server.pem',
        'ETCD_KEY_FILE=/etc/etcd/execgate/server-key.pem',
        'ETCD_TRUSTED_CA_FILE=/etc/etcd/execgate/ca.pem',
        'ETCD_CLIENT_CERT_AUTH=true',
        'ETCD_PEER_CERT_FILE=/etc/etcd/execgate/server.pem',
        'ETCD_PEER_KEY_FILE=/etc/etcd/execgate/server-key.pem',
        'ETCD_PEER_TRUSTED_CA_FILE=/etc/etcd/execgate/ca.pem',
        'ETCD_PEER_CLIENT_CERT_AUTH=true',
        '',
      ].join('\n'),
    );
    const bad = run('nope');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/node nope has no etcd endpoint/);
  });

  it('refuses gateway-only options on a load balancer, and an unreadable --authorized-keys', () => {
    const lb = spawnSync('bash', [join(ROOT, 'deploy/install.sh'), '--cluster', EXAMPLE, '--role', 'lb', '--etcd-member', '--dry-run'], { encoding: 'utf8' });
    expect(lb.status).toBe(2);
    expect(lb.stderr).toMatch(/--etcd-member, --etcd-certs and --authorized-keys are for gateways/);
    const ak = spawnSync('bash', [join(ROOT, 'deploy/install.sh'), '--cluster', EXAMPLE, '--node', 'gw1', '--host-keys', work, '--authorized-keys', join(work, 'none'), '--dry-run'], {
      encoding: 'utf8',
    });
    expect(ak.status).toBe(2);
    expect(ak.stderr).toMatch(/cannot read .*none/);
  });
});

describe('lab scripts', () => {
  // deploy/*.sh outside deploy/lab is covered by test/tools/cluster-render.test.ts.
  const scripts = [
    'deploy/lab/vagrant-drill.sh',
    ...readdirSync(join(ROOT, 'deploy/lab/vagrant'))
      .filter((f) => f.endsWith('.sh'))
      .map((f) => `deploy/lab/vagrant/${f}`),
  ];

  labIt('shellcheck passes on the Vagrant lab scripts', has('shellcheck') ? null : 'shellcheck', async () => {
    expect(scripts.length).toBeGreaterThanOrEqual(4);
    const r = spawnSync(
      'shellcheck',
      scripts.map((s) => join(ROOT, s)),
      { encoding: 'utf8' },
    );
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('vagrant-drill.sh explains itself and refuses unknown scenarios before touching any VM', () => {
    const help = spawnSync('bash', [join(ROOT, 'deploy/lab/vagrant-drill.sh'), '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/kill .*SIGKILL/);
    const bad = spawnSync('bash', [join(ROOT, 'deploy/lab/vagrant-drill.sh'), '--scenarios', 'kill meteor'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown scenario meteor/);
  });

  it('the drill, rundeck.sh and the job agree on the example job id', () => {
    const id = /demo_job=([0-9a-f-]{36})/;
    expect(readFileSync(join(ROOT, 'deploy/lab/vagrant-drill.sh'), 'utf8').match(id)?.[1]).toBe(readFileSync(join(ROOT, 'deploy/lab/vagrant/rundeck.sh'), 'utf8').match(id)?.[1]);
  });
});
