import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { jsch, run, ssh } from '../helpers/clients.js';
import { labIt } from '../helpers/lab.js';
import type { StatusView } from '../../src/http/status.js';
import type { PostureUse } from '../../src/ssh/postureReport.js';

/**
 * Algorithm posture against real clients: JSch 0.1.55 (Rundeck <= 5.9) negotiates the
 * legacy set, OpenSSH nothing legacy; /metrics counts both, and /status, the page,
 * `execgate status` and `execgate doctor` name what JSch used and which client it was.
 */

const IFACE = readdirSync('/sys/class/net').find((i) => i !== 'lo' && existsSync(`/sys/class/net/${i}/address`)) ?? 'eth0';
const JSCH_IDENT = 'SSH-2.0-JSCH-0.1.54'; // Debian's libjsch-java 0.1.55 announces itself as 0.1.54

function javaMissing(): string | null {
  if (!existsSync('/usr/share/java/jsch.jar')) return 'JSch is not installed (apt-get install libjsch-java; .ci/install-debian-packages does)';
  try {
    execFileSync('javac', ['-version'], { stdio: 'ignore' });
  } catch {
    return 'javac is not installed (apt-get install default-jdk-headless)';
  }
  return null;
}

/** `execgate <args>`, stdout as text. */
async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await run(process.execPath, [CLI, ...args]);
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
}

function deadPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The value of one sample of /metrics (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

const brief = (uses: PostureUse[]) => uses.map((u) => `${u.kind} ${u.algorithm} ${u.handshakes24h} ${u.clients.join(',')}`).sort();

describe('algorithm posture with JSch 0.1.55 and OpenSSH', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'execgate-posture-state-'));
  const gateways: TestGateway[] = [];
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    rmSync(stateDir, { recursive: true, force: true });
  });

  const status = async (gw: TestGateway) => (await (await fetch(`${gw.httpUrl}/status`)).json()) as StatusView;
  const metrics = async (gw: TestGateway) => (await fetch(`${gw.httpUrl}/metrics`)).text();

  labIt(
    'counts every handshake by algorithm, records only what authenticated clients used, names JSch and its legacy algorithms everywhere, and keeps them across a restart',
    javaMissing(),
    async () => {
      const gw = await startTestGateway({ stateDir });
      gateways.push(gw);

      // OpenSSH with its defaults: nothing legacy. RekeyLimit makes it rekey: each rekey counts.
      // The client starts a rekey once it has received 32 KiB; the sleep keeps the session open
      // until that rekey is done (without it, a loaded machine can deliver the whole output and
      // the close first, and the client leaves mid-rekey: nothing to count).
      const o = await ssh(gw.port, gw.keys.ed25519, 'head -c 262144 /dev/zero; sleep 2; echo openssh', { extra: ['-o', 'RekeyLimit=32K'] });
      expect(o.stderr).toBe('');
      expect(o.stdout.subarray(262144).toString()).toBe('openssh\n');
      // A legacy-only client that never authenticates (as a scanner): counted, not recorded.
      const stranger = join(gw.dir, 'stranger');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      const scan = await ssh(gw.port, stranger, 'true', {
        extra: ['-o', 'KexAlgorithms=ecdh-sha2-nistp384', '-o', 'HostKeyAlgorithms=ssh-rsa', '-o', 'Ciphers=aes256-ctr', '-o', 'MACs=hmac-sha1'],
      });
      expect(scan.code).toBe(255);
      expect(scan.stderr).toMatch(/Permission denied \(publickey\)/);

      let s = await status(gw);
      expect(s.algorithms).toMatchObject({ legacyOffered: true, verdict: 'unused-short-record', coversWindow: false, legacy: [], compat: [] });
      expect(s.algorithms!.summary).toMatch(
        /^no legacy algorithm negotiated since \S+Z, but this record covers only 0\.0 h of the last 24 h: not yet evidence that auth\.allowSshRsaSha1: false is safe/,
      );

      // JSch 0.1.55 as Rundeck's jsch-ssh executor drives it.
      const j = await jsch(['--host', '127.0.0.1', '--port', String(gw.port), '--user', 'root', '--key', gw.keys.rsaPem, '--node', 'gw-test', '--mode', 'exec', '--command', 'echo jsch']);
      expect(j.code).toBe(0);
      expect(j.ops[0]).toMatchObject({ op: 'exec', exit: 0, stdout: 'jsch\n' });

      const m = await metrics(gw);
      const node = 'gw-test';
      expect(sample(m, 'execgate_ssh_handshakes_total', { node, type: 'initial' })).toBe(3);
      const rekeys = sample(m, 'execgate_ssh_handshakes_total', { node, type: 'rekey' });
      expect(rekeys).toBeGreaterThanOrEqual(1);
      expect(m).toMatch(/^execgate_ssh_handshakes_total\{type="rekey",node="gw-test"\} \d+$/m);
      // JSch: the legacy set.
      expect(sample(m, 'execgate_ssh_negotiated_kex_total', { node, algorithm: 'ecdh-sha2-nistp256' })).toBe(1);
      expect(sample(m, 'execgate_ssh_negotiated_host_key_total', { node, algorithm: 'ssh-rsa' })).toBe(2); // JSch and the scanner
      expect(sample(m, 'execgate_ssh_negotiated_cipher_total', { node, algorithm: 'aes128-ctr' })).toBe(1);
      expect(sample(m, 'execgate_ssh_negotiated_mac_total', { node, algorithm: 'hmac-sha1' })).toBe(2);
      expect(sample(m, 'execgate_ssh_userauth_signatures_total', { node, algorithm: 'ssh-rsa' })).toBe(1);
      // The scanner's kex is counted by the metrics.
      expect(sample(m, 'execgate_ssh_negotiated_kex_total', { node, algorithm: 'ecdh-sha2-nistp384' })).toBe(1);
      expect(sample(m, 'execgate_ssh_negotiated_cipher_total', { node, algorithm: 'aes256-ctr' })).toBe(1);
      // OpenSSH: X25519 (or ML-KEM where the client has it), Ed25519, an AEAD cipher with its implicit MAC.
      // Each of its rekeys negotiates again and counts again.
      expect(
        sample(m, 'execgate_ssh_negotiated_kex_total', { node, algorithm: 'curve25519-sha256' }) + sample(m, 'execgate_ssh_negotiated_kex_total', { node, algorithm: 'mlkem768x25519-sha256' }),
      ).toBe(1 + rekeys);
      expect(sample(m, 'execgate_ssh_negotiated_host_key_total', { node, algorithm: 'ssh-ed25519' })).toBe(1 + rekeys);
      expect(sample(m, 'execgate_ssh_negotiated_mac_total', { node, algorithm: 'implicit' })).toBe(1 + rekeys);
      expect(sample(m, 'execgate_ssh_userauth_signatures_total', { node, algorithm: 'ssh-ed25519' })).toBe(1);
      expect(sample(m, 'execgate_ssh_negotiated_compression_total', { node, algorithm: 'none' })).toBe(3 + rekeys);

      s = await status(gw);
      const p = s.algorithms!;
      expect(p.verdict).toBe('in-use');
      // Exactly what JSch used, by JSch; not the scanner's nistp384/aes256-ctr, nothing of OpenSSH.
      expect(brief(p.legacy)).toEqual([`host-key ssh-rsa 1 ${JSCH_IDENT}`, `kex ecdh-sha2-nistp256 1 ${JSCH_IDENT}`, `mac hmac-sha1 1 ${JSCH_IDENT}`, `user-auth ssh-rsa 1 ${JSCH_IDENT}`]);
      expect(brief(p.compat)).toEqual([`cipher aes128-ctr 1 ${JSCH_IDENT}`]);
      expect(JSON.stringify(p)).not.toMatch(/OpenSSH|nistp384|aes256-ctr/);
      expect(p.summary).toMatch(
        new RegExp(`^legacy algorithms negotiated in the last 24 h: .*ecdh-sha2-nistp256 kex \\(1 handshake, last \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\dZ, client ${JSCH_IDENT}\\)`),
      );

      // execgate status (the CLI)
      const cliStatus = await cli(['status', '--url', gw.httpUrl!]);
      expect(cliStatus.code).toBe(0);
      expect(cliStatus.stdout).toMatch(
        /^algorithms: legacy algorithms negotiated in the last 24 h: .*ecdh-sha2-nistp256 kex \(1 handshake, last [^,]+, client SSH-2\.0-JSCH-0\.1\.54\).*keep auth\.allowSshRsaSha1: true until these clients are upgraded$/m,
      );

      // The page
      const page = await (await fetch(`${gw.httpUrl}/`)).text();
      expect(page).toContain('id="algorithm-posture" data-verdict="in-use"');
      expect(page).toMatch(/<tr data-algorithm="ecdh-sha2-nistp256" data-tier="legacy"><td class="mono">ecdh-sha2-nistp256<\/td><td>kex<\/td>.*<td class="mono">SSH-2\.0-JSCH-0\.1\.54<\/td><\/tr>/);
      expect(page).toMatch(/<tr data-algorithm="aes128-ctr" data-tier="compat">/);

      // execgate doctor, with this gateway and a node that does not answer
      const dead = await deadPort('127.0.0.3');
      const cluster = {
        cluster: 'posture-test',
        vip: { address: '127.0.0.100', prefixLength: 8, interface: IFACE },
        vrrp: { scriptUser: 'nobody' },
        leadership: { source: 'static' },
        gateway: { hostKeys: ['/nonexistent/k'], authorizedKeys: '/nonexistent/ak', audit: { path: '/nonexistent/audit.jsonl' } },
        nodes: [
          { name: 'gw-test', address: '127.0.0.1', priority: 150, sshPort: gw.port, httpPort: gw.httpPort },
          { name: 'gw-c', address: '127.0.0.3', priority: 130, sshPort: 2222, httpPort: dead },
        ],
      };
      const file = join(stateDir, 'cluster.yaml');
      writeFileSync(file, stringify(cluster));
      const doctor = await cli(['doctor', '--cluster', file]);
      expect(doctor.stderr).toBe('');
      for (const a of ['ecdh-sha2-nistp256 kex', 'ssh-rsa host key', 'hmac-sha1 MAC', 'ssh-rsa user signature']) {
        expect(doctor.stdout).toMatch(new RegExp(`^legacy algorithms\\s+gw-test\\s+WARN\\s+${a} in the last 24 h: 1 handshake, last \\S+Z, client SSH-2\\.0-JSCH-0\\.1\\.54$`, 'm'));
      }
      expect(doctor.stdout).toMatch(/fix:\s+upgrade the named clients .*then set auth\.allowSshRsaSha1: false on every node/);
      expect(doctor.stdout).toMatch(
        /^legacy algorithms\s+cluster\s+WARN\s+negotiated in the last 24 h on gw-test \(ecdh-sha2-nistp256, ssh-rsa, hmac-sha1\) \(not known for gw-c unreachable\): keep auth\.allowSshRsaSha1: true$/m,
      );

      // A restart keeps the record (written on shutdown); the counters start again.
      await gw.stop();
      const record = JSON.parse(readFileSync(join(stateDir, 'algorithm-posture.json'), 'utf8')) as { entries: unknown[] };
      expect(record.entries).toHaveLength(5);
      const gw2 = await startTestGateway({ stateDir });
      gateways.push(gw2);
      const again = (await status(gw2)).algorithms!;
      expect(again.since).toBe(p.since);
      expect(again.verdict).toBe('in-use');
      expect(again.legacy).toEqual(p.legacy);
      expect(sample(await metrics(gw2), 'execgate_ssh_negotiated_kex_total', { node, algorithm: 'ecdh-sha2-nistp256' })).toBe(0);
    },
    120_000,
  );

  it('with auth.allowSshRsaSha1: false nothing legacy is offered, and the status says so', async () => {
    const gw = await startTestGateway({ auth: { allowSshRsaSha1: false } });
    gateways.push(gw);
    const o = await ssh(gw.port, gw.keys.ed25519, 'true');
    expect(o.code).toBe(0);
    const s = (await status(gw)).algorithms!;
    expect(s).toMatchObject({ legacyOffered: false, verdict: 'not-offered', legacy: [] });
    expect(s.summary).toBe('legacy algorithms are not offered (auth.allowSshRsaSha1: false) and none was negotiated in the last 24 h');
    // Without stateDir the record lives beside the audit log; it is written on shutdown.
    const exited = new Promise((r) => gw.proc.once('exit', r));
    gw.proc.kill('SIGTERM');
    await exited;
    expect(JSON.parse(readFileSync(join(gw.dir, 'algorithm-posture.json'), 'utf8'))).toMatchObject({ version: 1, entries: [] });
  });
});
