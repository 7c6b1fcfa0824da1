import { describe, it, expect } from 'vitest';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseCluster, loadClusterFile } from '../../src/config/clusterLoad.js';
import type { ClusterInput } from '../../src/config/cluster.js';
import { renderKeepalived } from '../../src/render/keepalived.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { renderSystemd } from '../../src/render/systemd.js';
import { watchdogSeconds } from '../../src/render/validate.js';
import { keepalivedCheck } from '../../src/doctor/tools.js';
import { createMetrics } from '../../src/metrics.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli.js');
/** keepalived -t insists on an existing, non-loopback interface. */
const IFACE = readdirSync('/sys/class/net').find((i) => i !== 'lo' && existsSync(`/sys/class/net/${i}/address`)) ?? 'eth0';

function base(nodes: number, over: Partial<ClusterInput> = {}): ClusterInput {
  return {
    cluster: 'test',
    vip: { address: '198.18.0.100', prefixLength: 24, interface: IFACE },
    leadership: { source: 'etcd', etcd: { endpoints: ['https://127.0.0.1:2379'], ttlSeconds: 5, marginSeconds: 1 } },
    gateway: { hostKeys: ['/etc/execgate/k'], authorizedKeys: '/etc/execgate/ak', audit: { path: '/var/log/execgate/audit.jsonl' } },
    nodes: Array.from({ length: nodes }, (_, i) => ({ name: `gw${i + 1}`, address: `198.18.0.${11 + i}`, priority: 150 - 10 * i })),
    ...over,
  };
}

function cluster(input: ClusterInput) {
  return parseCluster(input, 'test.yaml');
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

function withFile<T>(name: string, text: string, fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-render-'));
  try {
    const p = join(dir, name);
    writeFileSync(p, text);
    return fn(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** keepalived -t -e with script_user root: keepalived 2.2.7's -t kills itself (SIGTERM) with any other script_user. */
function keepalivedT(text: string): { status: number | null; out: string } {
  const rootText = text.replace(/^(\s*script_user)\s+\S+$/m, '$1 root');
  return withFile('keepalived.conf', rootText, (p) => {
    const r = spawnSync('keepalived', ['-t', '-e', '-f', p], { encoding: 'utf8' });
    return { status: r.status, out: r.stderr + r.stdout };
  });
}

function haproxyC(text: string): { status: number | null; out: string } {
  return withFile('haproxy.cfg', text, (p) => {
    const r = spawnSync('haproxy', ['-c', '-q', '-f', p], { encoding: 'utf8' });
    return { status: r.status, out: r.stderr + r.stdout };
  });
}

const variants: Array<[string, ClusterInput]> = [];
for (const n of [2, 3]) {
  for (const version of [2, 3] as const) {
    for (const source of ['vrrp', 'etcd'] as const) {
      variants.push([
        `${n} nodes, VRRPv${version}, ${source}`,
        base(n, {
          vrrp: { version, advertInterval: version === 2 ? 1 : 0.2, unicast: n === 3, nopreempt: source === 'vrrp' && n === 2 ? false : undefined, authPassword: version === 2 ? 'secret' : undefined },
          leadership: source === 'etcd' ? { source, etcd: { endpoints: ['https://127.0.0.1:2379'], ttlSeconds: 5, marginSeconds: 1 } } : { source },
        }),
      ]);
    }
  }
}

/** The layout `execgate certs --dir DIR` writes, with placeholder files (install.sh copies, it does not parse). */
function fakeEtcdCerts(dir: string): string {
  const certs = join(dir, 'etcd-certs');
  for (const sub of ['gateways', 'etcd']) mkdirSync(join(certs, sub), { recursive: true });
  const files = ['ca.pem', 'ca-key.pem', 'etcd-password', 'etcd-root-password', ...['gw1', 'gw2'].flatMap((n) => [`gateways/${n}.pem`, `gateways/${n}-key.pem`, `etcd/${n}.pem`, `etcd/${n}-key.pem`])];
  for (const f of files) writeFileSync(join(certs, f), `placeholder ${f}\n`, { mode: 0o600 });
  return certs;
}

describe('keepalived renderer', () => {
  for (const [name, input] of variants) {
    it(`passes keepalived -t -e: ${name}`, () => {
      const c = cluster(input);
      for (const node of c.nodes) {
        const text = renderKeepalived(c, node.name);
        const r = keepalivedT(text);
        expect(r.out).toBe('');
        expect(r.status).toBe(0);
        expect(text).toContain(`priority ${node.priority}`);
        expect(text).toContain(`version ${c.vrrp.version}`);
        expect(text).toContain('track_file {');
        expect(text).toContain(`file ${c.trackFile}`);
        expect(text).toContain(`notify_fifo ${c.notifyFifo}`);
        expect(text).toMatch(/vrrp_higher_prio_send_advert true/);
        expect(text).toMatch(/vrrp_garp_lower_prio_repeat 3/);
        expect(text).toContain(`http://${node.address}:${node.httpPort}/healthz`);
        if (c.vrrp.unicast) {
          for (const peer of c.nodes.filter((p) => p !== node)) expect(text).toContain(`        ${peer.address}\n`);
          expect(text).toContain(`unicast_src_ip ${node.address}`);
        } else {
          expect(text).not.toContain('unicast_peer');
        }
        // vrrp mode: nopreempt unless set to false; etcd mode: never.
        if (c.leadership.source === 'vrrp' && c.vrrp.nopreempt !== false) expect(text).toMatch(/state BACKUP[\s\S]*\n {4}nopreempt\n/);
        else expect(text).not.toMatch(/^\s*nopreempt$/m);
      }
    });
  }

  it('defaults to VRRPv3, unicast, advert 0.2 s and state BACKUP', () => {
    const text = renderKeepalived(cluster(base(2)), 'gw1');
    expect(text).toMatch(/version 3\n/);
    expect(text).toMatch(/advert_int 0\.2\n/);
    expect(text).toContain('unicast_peer');
    expect(text).toContain('state BACKUP');
    expect(text).toMatch(/interval 1\n/);
  });

  it('the doctor checker handles keepalived 2.2.7 -t terminating itself with a non-root script_user', () => {
    const text = renderKeepalived(cluster(base(2, { vrrp: { scriptUser: 'nobody' } })), 'gw1');
    expect(text).toContain('script_user nobody');
    const r = keepalivedCheck(text);
    expect(r.ok, r.detail).toBe(true);
  });

  it('keepalived refuses a check script writable by others (-t exits 5)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'execgate-ww-'));
    try {
      const curl = join(dir, 'curl');
      writeFileSync(curl, '#!/bin/sh\nexit 0\n', { mode: 0o777 });
      execFileSync('chmod', ['0777', curl]);
      const text = renderKeepalived(cluster(base(2, { vrrp: { curl } })), 'gw1');
      expect(keepalivedT(text).status).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('renderer refusals name the field', () => {
  it('VRID outside 1-255', () => {
    expect(refusal(() => cluster(base(2, { vrrp: { virtualRouterId: 256 } })))).toMatch(/vrrp\.virtualRouterId: 256 is outside 1-255/);
    expect(refusal(() => cluster(base(2, { vrrp: { virtualRouterId: 0 } })))).toMatch(/vrrp\.virtualRouterId/);
  });
  it('duplicate node names and priorities', () => {
    const input = base(3);
    input.nodes[2]!.name = 'gw1';
    input.nodes[1]!.priority = 150;
    const msg = refusal(() => cluster(input));
    expect(msg).toMatch(/nodes\.2\.name: "gw1" is used by nodes\.0/);
    expect(msg).toMatch(/nodes\.1\.priority: 150 is used by nodes\.0/);
  });
  it('VIP outside the subnet', () => {
    expect(refusal(() => cluster(base(2, { vip: { address: '198.19.0.100', prefixLength: 24, interface: IFACE } })))).toMatch(
      /vip\.address: 198\.19\.0\.100\/24 is outside the subnet of nodes\.0\.address/,
    );
    // a wider prefix makes the same VIP fine
    expect(() => cluster(base(2, { vip: { address: '198.19.0.100', prefixLength: 15, interface: IFACE } }))).not.toThrow();
  });
  it('advert interval below 1 s or fractional with VRRPv2', () => {
    expect(refusal(() => cluster(base(2, { vrrp: { version: 2, advertInterval: 0.2 } })))).toMatch(/vrrp\.advertInterval: 0\.2 s is below 1 s.*VRRPv2/);
    expect(refusal(() => cluster(base(2, { vrrp: { version: 2, advertInterval: 1.5 } })))).toMatch(/vrrp\.advertInterval: 1\.5 s is not a whole number/);
  });
  it('fewer than 2 nodes', () => {
    const c = cluster(base(1));
    expect(refusal(() => renderKeepalived(c, 'gw1'))).toMatch(/nodes: 1 node listed; a keepalived config .* at least 2/);
    expect(refusal(() => renderHaproxy(c))).toMatch(/nodes: 1 node listed/);
  });
  it('priorities too far apart for the track_file to lift the leader', () => {
    const input = base(2);
    input.nodes[0]!.priority = 200;
    input.nodes[1]!.priority = 50;
    expect(refusal(() => renderKeepalived(cluster(input), 'gw1'))).toMatch(/nodes\.0\.priority: 200 is 150 above/);
  });
  it('priorities too far apart for the next in line (etcd +50) to out-rank the other standbys', () => {
    const input = base(3);
    input.nodes[2]!.priority = 90; // 60 below gw1
    expect(refusal(() => renderKeepalived(cluster(input), 'gw1'))).toMatch(/nodes\.0\.priority: 150 is 60 above .* 50 to the next in line, so keep all priorities within 49/);
    const vrrp = base(3, { leadership: { source: 'vrrp' } });
    vrrp.nodes[2]!.priority = 90;
    expect(renderKeepalived(cluster(vrrp), 'gw1')).toContain('priority 150'); // vrrp: only the leader is lifted
  });
  it('nopreempt in etcd mode', () => {
    expect(refusal(() => cluster(base(2, { vrrp: { nopreempt: true } })))).toMatch(/vrrp\.nopreempt/);
  });
  it('a watchdog not below the lease TTL - margin', () => {
    expect(refusal(() => renderSystemd(cluster(base(2, { systemd: { watchdogSeconds: 4 } })), 'gw1'))).toMatch(/systemd\.watchdogSeconds: 4 s must be below .*\(4 s\)/);
  });
  it('an unknown node', () => {
    expect(refusal(() => renderKeepalived(cluster(base(2)), 'nope'))).toMatch(/node "nope" is not in the cluster file/);
  });
});

describe('haproxy renderer', () => {
  for (const n of [2, 3]) {
    it(`passes haproxy -c -q with ${n} gateways`, () => {
      const c = cluster(base(n, { loadBalancers: ['198.18.0.20'] }));
      const text = renderHaproxy(c);
      const r = haproxyC(text);
      expect(r.out).toBe('');
      expect(r.status).toBe(0);
      expect(text).toContain('option httpchk GET /leader');
      expect(text).toContain('http-check disable-on-404');
      expect(text).not.toContain('stick'); // a stick table keeps sending new connections to a stopping server
      expect(text).toMatch(/default-server inter 100ms fastinter 100ms downinter 100ms fall 2 rise 1 on-marked-down shutdown-sessions send-proxy-v2/);
      // A busy new leader must not be marked DOWN (and its sessions shut) for answering a check in 200 ms-1 s.
      expect(text).toContain('timeout check 1000ms');
      expect(text).toContain('option clitcpka');
      expect(text).toContain('option srvtcpka');
      expect(text).toContain('load-server-state-from-file global');
      expect(text).toContain('prometheus-exporter');
      expect(text).not.toMatch(/roundrobin/);
      for (const node of c.nodes) expect(text).toContain(`server ${node.name} ${node.address}:${node.sshPort} check port ${node.httpPort}`);
    });
  }
});

describe('systemd renderer', () => {
  const cli = join(ROOT, 'dist/src/cli.js');
  for (const hardening of ['standard', 'strict'] as const) {
    it(`systemd-analyze verify accepts the ${hardening} unit`, () => {
      expect(existsSync(cli)).toBe(true);
      const text = renderSystemd(cluster(base(2, { systemd: { hardening } })), 'gw1', { nodeBinary: process.execPath, cli });
      const dir = mkdtempSync(join(tmpdir(), 'execgate-unit-'));
      try {
        const unit = join(dir, 'execgate-test.service');
        writeFileSync(unit, text);
        const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
        expect(r.stderr + r.stdout).not.toMatch(/execgate-test\.service:\d+:/);
        expect(r.status).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(text).toContain('Type=notify');
      expect(text).toContain('Restart=always');
      expect(text).toContain('KillMode=control-group');
      expect(text).toMatch(/ExecStopPost=.*echo -254 > \/run\/execgate\/keepalived\.track\.tmp && mv -f \/run\/execgate\/keepalived\.track\.tmp \/run\/execgate\/keepalived\.track/);
      expect(text).toContain('RuntimeDirectoryPreserve=yes');
      if (hardening === 'standard') expect(text).not.toMatch(/^NoNewPrivileges/m);
      else expect(text).toMatch(/^CapabilityBoundingSet=.*CAP_SETUID.*CAP_SETGID/m);
    });
  }

  it('WatchdogSec stays below lease TTL - margin', () => {
    for (const [ttl, margin] of [
      [5, 1],
      [3, 1],
      [10, 2],
      [2, 0.5],
    ] as const) {
      const c = cluster(base(2, { leadership: { source: 'etcd', etcd: { endpoints: ['https://127.0.0.1:2379'], ttlSeconds: ttl, marginSeconds: margin } } }));
      const text = renderSystemd(c, 'gw1');
      const m = text.match(/^WatchdogSec=(\d+)ms$/m);
      expect(m).not.toBeNull();
      const wd = Number(m![1]) / 1000;
      expect(wd).toBe(watchdogSeconds(c));
      expect(wd).toBeLessThan(ttl - margin);
      expect(text).toContain('WatchdogSignal=SIGKILL');
    }
  });
});

describe('committed examples match a fresh render', () => {
  const example = join(ROOT, 'deploy/example-cluster.yaml');
  const c = loadClusterFile(example);
  it('deploy/example-cluster.yaml: 3 nodes in 198.18.0.0/15', () => {
    expect(c.nodes).toHaveLength(3);
    for (const n of c.nodes) expect(n.address).toMatch(/^198\.1[89]\./);
  });
  for (const node of ['gw1', 'gw2', 'gw3']) {
    it(`keepalived/${node}.conf and deploy/systemd/execgate-${node}.service`, () => {
      expect(readFileSync(join(ROOT, `keepalived/${node}.conf`), 'utf8'), `run: execgate render keepalived --cluster deploy/example-cluster.yaml --node ${node} --out keepalived/${node}.conf`).toBe(
        renderKeepalived(c, node, example),
      );
      expect(readFileSync(join(ROOT, `deploy/systemd/execgate-${node}.service`), 'utf8')).toBe(renderSystemd(c, node, { source: example }));
    });
  }
  it('haproxy/haproxy.cfg', () => {
    expect(readFileSync(join(ROOT, 'haproxy/haproxy.cfg'), 'utf8'), 'run: execgate render haproxy --cluster deploy/example-cluster.yaml --out haproxy/haproxy.cfg').toBe(renderHaproxy(c, example));
  });
  it('the examples pass the real checkers', () => {
    for (const node of ['gw1', 'gw2', 'gw3']) expect(keepalivedT(readFileSync(join(ROOT, `keepalived/${node}.conf`), 'utf8')).status).toBe(0);
    expect(haproxyC(readFileSync(join(ROOT, 'haproxy/haproxy.cfg'), 'utf8')).status).toBe(0);
  });
});

describe('execgate render and keygen --cluster (CLI)', () => {
  it('render writes --out and refuses a bad cluster with the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'execgate-cli-'));
    try {
      const out = join(dir, 'k.conf');
      const ok = spawnSync(process.execPath, [CLI, 'render', 'keepalived', '--cluster', join(ROOT, 'deploy/example-cluster.yaml'), '--node', 'gw2', '--out', out], { encoding: 'utf8' });
      expect(ok.status, ok.stderr).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(ROOT, 'keepalived/gw2.conf'), 'utf8'));
      const raw = parseYaml(readFileSync(join(ROOT, 'deploy/example-cluster.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
      raw.vrrp!.virtualRouterId = 999;
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, JSON.stringify(raw));
      const r = spawnSync(process.execPath, [CLI, 'render', 'haproxy', '--cluster', bad], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/vrrp\.virtualRouterId: 999/);
      const noNode = spawnSync(process.execPath, [CLI, 'render', 'systemd', '--cluster', join(ROOT, 'deploy/example-cluster.yaml')], { encoding: 'utf8' });
      expect(noNode.status).toBe(2);
      expect(noNode.stderr).toMatch(/--node NAME \(one of: gw1, gw2, gw3\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keygen --cluster makes one key set and a known_hosts for the VIP and every node', () => {
    const dir = mkdtempSync(join(tmpdir(), 'execgate-keygen-'));
    try {
      const raw = parseYaml(readFileSync(join(ROOT, 'deploy/example-cluster.yaml'), 'utf8')) as { gateway: { hostKeys: string[] } };
      raw.gateway.hostKeys = ['keys/ssh_host_ed25519_key', 'keys/ssh_host_rsa_key'];
      const file = join(dir, 'cluster.yaml');
      writeFileSync(file, JSON.stringify(raw));
      const r = spawnSync(process.execPath, [CLI, 'keygen', '--cluster', file], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/ssh_host_ed25519_key SHA256:/);
      const kh = readFileSync(join(dir, 'keys/known_hosts'), 'utf8');
      expect(kh).toMatch(/^198\.18\.0\.100,\[198\.18\.0\.11\]:2222,\[198\.18\.0\.12\]:2222,\[198\.18\.0\.13\]:2222,198\.18\.0\.20 ssh-ed25519 /m);
      expect(kh).toMatch(/ ssh-rsa /);
      // a second run keeps the same keys
      const again = spawnSync(process.execPath, [CLI, 'keygen', '--cluster', file], { encoding: 'utf8' });
      expect(again.stdout.split('\n')[0]).toBe(r.stdout.split('\n')[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy kit', () => {
  it('shellcheck passes on every script under deploy/', () => {
    const scripts = execFileSync('find', [join(ROOT, 'deploy'), '-name', '*.sh', '-not', '-path', '*/lab/*'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    expect(scripts.length).toBeGreaterThan(0);
    const r = spawnSync('shellcheck', scripts, { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('install.sh --dry-run prints every step and changes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'execgate-install-'));
    try {
      execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'keys')]);
      const certs = fakeEtcdCerts(dir);
      const example = join(ROOT, 'deploy/example-cluster.yaml');
      const install = (...args: string[]) => spawnSync('bash', [join(ROOT, 'deploy/install.sh'), '--cluster', example, ...args, '--dry-run'], { encoding: 'utf8' });
      const gw = install('--node', 'gw1', '--host-keys', join(dir, 'keys'), '--etcd-certs', certs);
      expect(gw.status, gw.stderr).toBe(0);
      expect(gw.stdout).toMatch(/\+ apt-get install -y --no-install-recommends \/\S+\/execgate_\S+\.deb keepalived curl logrotate$/m);
      expect(gw.stdout).toMatch(/\+ install -m 0600 .*ssh_host_ed25519_key \/etc\/execgate\/host-keys\//);
      expect(gw.stdout).toMatch(/\+ write \/etc\/keepalived\/keepalived\.conf/);
      expect(gw.stdout).toMatch(/\+ write \/etc\/systemd\/system\/execgate\.service/);
      expect(gw.stdout).toMatch(/\+ systemctl enable --now execgate\.service keepalived\.service/);
      // etcd: this node's client certificate, the CA and the password, at the defaults of leadership.etcd.tls/auth.
      expect(gw.stdout).toContain('+ install -d -m 0700 /etc/execgate/etcd\n');
      expect(gw.stdout).toContain(`+ install -m 0644 ${certs}/ca.pem /etc/execgate/etcd/ca.pem\n`);
      expect(gw.stdout).toContain(`+ install -m 0644 ${certs}/gateways/gw1.pem /etc/execgate/etcd/client.pem\n`);
      expect(gw.stdout).toContain(`+ install -m 0600 ${certs}/gateways/gw1-key.pem /etc/execgate/etcd/client-key.pem\n`);
      expect(gw.stdout).toContain(`+ install -m 0600 ${certs}/etcd-password /etc/execgate/etcd/password\n`);
      expect(gw.stdout).not.toContain('/etc/etcd/execgate');
      expect(gw.stdout).toMatch(
        /once every etcd member is installed, run once for the cluster .*: execgate etcd-setup --cluster \/etc\/execgate\/cluster\.yaml --apply --root-password-file \S+\/etcd-root-password$/m,
      );
      expect(gw.stdout).toMatch(/wrote a new cluster token to \/etc\/execgate\/http-token: every node needs the same one/);
      // The member: its certificate readable by etcd, and mutual TLS in /etc/default/etcd; the cluster's token from a file.
      writeFileSync(join(dir, 'token'), 'the-cluster-token-0123456789\n', { mode: 0o600 });
      const member = install('--node', 'gw2', '--host-keys', join(dir, 'keys'), '--etcd-certs', certs, '--etcd-member', '--token-file', join(dir, 'token'), '--etcd-setup');
      expect(member.status, member.stderr).toBe(0);
      expect(member.stdout).toContain('+ install -d -m 0750 -o root -g etcd /etc/etcd/execgate\n');
      expect(member.stdout).toContain(`+ install -m 0644 ${certs}/etcd/gw2.pem /etc/etcd/execgate/server.pem\n`);
      expect(member.stdout).toContain(`+ install -m 0640 -o root -g etcd ${certs}/etcd/gw2-key.pem /etc/etcd/execgate/server-key.pem\n`);
      expect(member.stdout.indexOf('etcd-server')).toBeLessThan(member.stdout.indexOf('/etc/etcd/execgate/server.pem'));
      expect(member.stdout).toContain(`+ install -m 0600 ${join(dir, 'token')} /etc/execgate/http-token\n`);
      expect(member.stdout).not.toContain('wrote a new cluster token');
      expect(member.stdout).toMatch(/^\+ execgate etcd-setup --cluster \/etc\/execgate\/cluster\.yaml --apply --root-password-file \S+\/etcd-root-password$/m);
      // https endpoints without --etcd-certs: stops before anything, naming the fix.
      const noCerts = install('--node', 'gw1', '--host-keys', join(dir, 'keys'));
      expect(noCerts.status).toBe(2);
      expect(noCerts.stderr).toMatch(/the cluster's etcd endpoints are https: give --etcd-certs DIR, the directory "execgate certs --cluster \S+ --dir DIR" made/);
      expect(noCerts.stdout).not.toMatch(/^\+ /m);
      const wrongNode = install('--node', 'gw3', '--host-keys', join(dir, 'keys'), '--etcd-certs', certs);
      expect(wrongNode.status).toBe(2);
      expect(wrongNode.stderr).toMatch(/no \S+\/gateways\/gw3\.pem: --etcd-certs is the directory execgate certs/);
      const lb = install('--role', 'lb');
      expect(lb.status, lb.stderr).toBe(0);
      expect(lb.stdout).toMatch(/\+ write \/etc\/haproxy\/haproxy\.cfg/);
      const missing = install('--node', 'gw1');
      expect(missing.status).toBe(2);
      expect(missing.stderr).toMatch(/--host-keys DIR is required/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('promtool check rules and test rules pass', () => {
    const check = spawnSync('promtool', ['check', 'rules', join(ROOT, 'deploy/prometheus/execgate-rules.yml')], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const test = spawnSync('promtool', ['test', 'rules', join(ROOT, 'deploy/prometheus/execgate-rules.test.yml')], { encoding: 'utf8' });
    expect(test.status, test.stdout + test.stderr).toBe(0);
  });

  it('every alert has a promtool test case', () => {
    const rules = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/execgate-rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> };
    const tests = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/execgate-rules.test.yml'), 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts.sort()).toEqual(['ExecgateAuthFailureSpike', 'ExecgateCommandsRefused', 'ExecgateDown', 'ExecgateLeadershipFlapping', 'ExecgateNoLeader', 'ExecgateTwoLeaders']);
    const fired = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    for (const a of alerts) {
      expect(fired.has(a), `${a} has a firing case`).toBe(true);
      expect(quiet.has(a), `${a} has a quiet case`).toBe(true);
    }
  });

  it('rules and dashboard reference only metrics execgate exports', async () => {
    const metrics = createMetrics('test', 'native');
    const exported = new Set<string>();
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      exported.add(m.name);
      // prom-client types the field as a numeric enum; at run time it is the name ('histogram').
      const type = String(m.type);
      if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
    }
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/execgate-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const rules = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/execgate-rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> };
    exprs.push(...rules.groups.flatMap((g) => g.rules.map((r) => r.expr)));
    const used = new Set(exprs.flatMap((e) => e.match(/\bexecgate_[a-z0-9_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(exported.has(name), `${name} is not exported by src/metrics.ts`).toBe(true);
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join('|');
    for (const want of ['leader per node', 'token', 'commands/s by result', 'duration quantiles', 'failovers', 'refusals']) expect(titles).toContain(want);
  });
});
