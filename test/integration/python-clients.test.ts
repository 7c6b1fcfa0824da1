import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { run } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

/**
 * Paramiko (what Ansible's paramiko connection and Fabric use) and AsyncSSH, Debian's
 * builds, against execgate: the same exec / env / sftp / scp / script-step checks the
 * OpenSSH and JSch suites make. The clients are test/clients/*.py, run with Debian's
 * /usr/bin/python3 (never a pyenv python3 on PATH: it lacks Debian's modules).
 * Without EXECGATE_REQUIRE_LAB=1 a missing module skips with the package to install;
 * with it, it is a failure.
 */
const PYTHON = '/usr/bin/python3';
const required = process.env.EXECGATE_REQUIRE_LAB === '1';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface PyClient {
  name: string;
  script: string;
  /** Python modules the client imports, with the Debian package that ships each. */
  modules: Array<[module: string, pkg: string]>;
}

const CLIENTS: PyClient[] = [
  {
    name: 'paramiko 2.12',
    script: 'paramiko_client.py',
    modules: [
      ['paramiko', 'python3-paramiko'],
      ['scp', 'python3-scp'],
    ],
  },
  { name: 'asyncssh 2.10', script: 'asyncssh_client.py', modules: [['asyncssh', 'python3-asyncssh']] },
];

/** What is missing to run this client, or null. */
function missingFor(c: PyClient): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} (apt-get install python3)`;
  const absent = c.modules.filter(([m]) => spawnSync(PYTHON, ['-c', `import ${m}`], { stdio: 'ignore', cwd: tmpdir() }).status !== 0);
  return absent.length ? `Python module(s) ${absent.map(([m, p]) => `${m} (apt-get install ${p}; .ci/install-debian-packages does)`).join(', ')}` : null;
}

interface Negotiated {
  library: string;
  version: string;
  serverVersion: string;
  kex: string | null;
  hostKey: string | null;
  cipherC2S: string;
  cipherS2C: string;
  macC2S: string;
  macS2C: string;
}

/** Algorithms ssh-audit flags or that execgate keeps only for JSch 0.1.55 (src/ssh/algorithms.ts). */
const LEGACY = /^(ecdh-sha2-nistp|diffie-hellman-group(1|14)-sha1|diffie-hellman-group-exchange-sha1|ssh-rsa$|ssh-dss|hmac-sha1|hmac-md5|.*-cbc$|3des|arcfour)/;

for (const client of CLIENTS) {
  describe(`${client.name} (${client.script}) against execgate`, () => {
    const missing = missingFor(client);
    if (missing) {
      if (required) it('has its prerequisites', () => expect.fail(`EXECGATE_REQUIRE_LAB=1 but missing: ${missing}`));
      else it.skip(`skipped: missing ${missing}`, () => {});
      return;
    }

    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startTestGateway();
    });
    afterAll(async () => {
      await gw?.stop();
    });

    const py = (args: string[], options: { key?: string; env?: Record<string, string>; info?: string; port?: number } = {}) =>
      run(PYTHON, [
        join(ROOT, 'test/clients', client.script),
        '--port',
        String(options.port ?? gw.port),
        '--key',
        options.key ?? gw.keys.ed25519,
        '--timeout',
        '20',
        ...Object.entries(options.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
        ...(options.info ? ['--info', options.info] : []),
        ...args,
      ]);
    const exec = (command: string, options: Parameters<typeof py>[1] = {}) => py(['exec', command], options);
    const auditOf = async (pred: (a: Record<string, unknown>) => boolean) => {
      await until(() => gw.audit().some(pred), 5000);
      return gw.audit().find(pred);
    };

    it('separates stdout from stderr and returns the exit code exactly', async () => {
      for (const code of [0, 3, 254]) {
        const r = await exec(`echo to-out-${code}; echo to-err-${code} >&2; exit ${code}`);
        expect(r.stderr).toBe(`to-err-${code}\n`);
        expect(r.stdout.toString()).toBe(`to-out-${code}\n`);
        expect(r.code).toBe(code);
      }
      const killed = await exec('echo before; kill -KILL $$');
      expect(killed.stdout.toString()).toBe('before\n');
      expect(killed.code).toBe(137);
    });

    it('delivers 3 MB stdout and 2 MB stderr at once, byte-identical', async () => {
      const out = join(gw.dir, 'out.bin');
      const err = join(gw.dir, 'err.bin');
      writeFileSync(out, randomBytes(3 * 1024 * 1024));
      writeFileSync(err, randomBytes(2 * 1024 * 1024));
      const r = await exec(`cat ${err} >&2 & cat ${out}; wait`);
      expect(r.code).toBe(0);
      expect(sha256(r.stdout)).toBe(sha256(readFileSync(out)));
      expect(sha256(r.stderrBytes)).toBe(sha256(readFileSync(err)));
    });

    it('passes RD_* env requests to the command, drops LD_PRELOAD, audits RD_JOB_EXECID', async () => {
      const execId = `77${CLIENTS.indexOf(client)}1`;
      const r = await exec('echo "id=${RD_JOB_EXECID:-unset} opt=${RD_OPTION_X:-unset} preload=${LD_PRELOAD:-unset} node=$EXECGATE_NODE"', {
        env: { RD_JOB_EXECID: execId, RD_OPTION_X: 'secret value', LD_PRELOAD: '/nonexistent/evil.so' },
      });
      expect(r.stderr).toBe('');
      expect(r.stdout.toString()).toBe(`id=${execId} opt=secret value preload=unset node=gw-test\n`);
      expect(r.code).toBe(0);
      expect(await auditOf((a) => a.rdJobExecId === execId)).toMatchObject({ result: 'completed', exitStatus: 0, token: '1', node: 'gw-test' });
    });

    it('runs under a pty when asked (Ansible paramiko with become): one stream, exit code kept', async () => {
      const r = await py(['--pty', 'exec', 'tty; echo "term=$TERM"; echo to-err >&2; exit 4']);
      const text = r.stdout.toString();
      expect(text).toMatch(/^\/dev\/pts\/\d+\r\n/);
      expect(text).toContain('term=vt100\r\n');
      expect(text).toContain('to-err\r\n'); // a pty has one output stream
      expect(r.stderr).toBe('');
      expect(r.code).toBe(4);
    });

    it('keeps a quiet 4 s command alive with 1 s keepalive global requests', async () => {
      // AsyncSSH wants a reply and disconnects after 3 unanswered; paramiko wants none.
      const r = await py(['--keepalive', '1', 'exec', 'sleep 4; echo alive']);
      expect(r.stderr).toBe('');
      expect(r.stdout.toString()).toBe('alive\n');
      expect(r.code).toBe(0);
    });

    for (const proto of ['sftp', 'scp'] as const) {
      it(`${proto} put then get of a 1 MB random file, byte-identical`, async () => {
        const local = join(gw.dir, `${proto}-local.bin`);
        const remote = join(gw.dir, `${proto}-remote.bin`);
        const back = join(gw.dir, `${proto}-back.bin`);
        writeFileSync(local, randomBytes(1024 * 1024));
        const put = await py([`${proto}-put`, local, remote]);
        expect(put.stderr).toBe('');
        expect(put.code).toBe(0);
        expect(sha256(readFileSync(remote))).toBe(sha256(readFileSync(local)));
        const get = await py([`${proto}-get`, remote, back]);
        expect(get.stderr).toBe('');
        expect(get.code).toBe(0);
        expect(sha256(readFileSync(back))).toBe(sha256(readFileSync(local)));
        const marker = proto === 'sftp' ? (a: Record<string, unknown>) => a.command === '(sftp)' : (a: Record<string, unknown>) => String(a.command).startsWith('scp -t');
        expect(await auditOf(marker)).toMatchObject({ result: 'completed', exitStatus: 0 });
      });
    }

    it('runs a Rundeck script step: upload, chmod +x, run with env, rm -f (four connections)', async () => {
      const execId = `88${CLIENTS.indexOf(client)}2`;
      const remote = join(tmpdir(), `1-${execId}-gw-test-dispatch-script.tmp.sh`);
      const local = join(gw.dir, 'step.sh');
      writeFileSync(local, '#!/bin/sh\necho "step exec=$RD_JOB_EXECID args=$*"\necho step-warning >&2\nexit 5\n');
      try {
        const up = await py(['scp-put', local, remote]);
        expect(up.stderr).toBe('');
        expect(up.code).toBe(0);
        expect((await exec(`chmod +x ${remote}`)).code).toBe(0);
        const step = await exec(`${remote} a b`, { env: { RD_JOB_EXECID: execId } });
        expect(step.stdout.toString()).toBe(`step exec=${execId} args=a b\n`);
        expect(step.stderr).toBe('step-warning\n');
        expect(step.code).toBe(5);
        expect((await exec(`rm -f ${remote}`)).code).toBe(0);
        expect(existsSync(remote)).toBe(false);
        expect(await auditOf((a) => a.rdJobExecId === execId)).toMatchObject({ command: `${remote} a b`, result: 'completed', exitStatus: 5 });
      } finally {
        rmSync(remote, { force: true });
      }
    });

    it('negotiates X25519 kex, the Ed25519 host key and no legacy cipher or MAC', async () => {
      const infoPath = join(gw.dir, `${client.script}.info.json`);
      const r = await exec('true', { info: infoPath });
      expect(r.code).toBe(0);
      const info = JSON.parse(readFileSync(infoPath, 'utf8')) as Negotiated;
      console.log(`${client.name} negotiated with execgate: ${JSON.stringify(info)}`);
      expect(info.serverVersion).toMatch(/^SSH-2\.0-execgate/);
      expect(info.kex).toMatch(/^curve25519-sha256(@libssh\.org)?$/);
      expect(info.hostKey).toBe('ssh-ed25519');
      for (const alg of [info.cipherC2S, info.cipherS2C, info.macC2S, info.macS2C]) expect(alg).not.toMatch(LEGACY);
    });

    it('exits 255 naming the problem when the key is not authorized or nothing listens', async () => {
      const stranger = join(gw.dir, `stranger-${client.script}`);
      if (!existsSync(stranger)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      const denied = await exec('echo must-not-run', { key: stranger });
      expect(denied.stdout.toString()).toBe('');
      expect(denied.stderr).toMatch(/cannot connect to root@127\.0\.0\.1:\d+: .*(Authentication|Permission denied|auth)/i);
      expect(denied.code).toBe(255);
      const closed = await exec('true', { port: 1 });
      expect(closed.stderr).toMatch(/cannot connect to root@127\.0\.0\.1:1: /);
      expect(closed.code).toBe(255);
    });

    // RSA keys in PEM form are what many Ansible/Fabric setups still carry. AsyncSSH
    // checks that USERAUTH_PK_OK names the algorithm it asked about (rsa-sha2-256, RFC
    // 4252 section 7); ssh2 1.17 answered ssh-rsa ("Key mismatch") until execgate's patch.
    it('authenticates with an RSA (PEM) key using rsa-sha2 signatures', async () => {
      const r = await exec('echo rsa-ok', { key: gw.keys.rsaPem });
      expect(r.stderr).toBe('');
      expect(r.stdout.toString()).toBe('rsa-ok\n');
      expect(r.code).toBe(0);
    });
  });
}
