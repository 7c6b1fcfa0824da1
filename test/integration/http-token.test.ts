import { describe, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, CLI, waitForOutput, type TestGateway } from '../helpers/gateway.js';
import { ssh, run, type RunResult } from '../helpers/clients.js';
import { labIt, notRoot } from '../helpers/lab.js';
import { sleep } from '../helpers/proc.js';

/**
 * Issue 14, finding 12: a job running through the gateway as an unprivileged account
 * read root's command lines from /status and drained the node, although http.token
 * was set, because loopback callers were trusted.
 */
const TOKEN = 'integration-http-token-0123456789';
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups', '--'];
const SECRET = `hunter2-${process.pid}`;

/** curl as nobody: prints the body, then the HTTP status on its own line. */
const curlAsNobody = (method: string, url: string) => `setpriv ${NOBODY.join(' ')} curl -sS -X ${method} -w '\\n%{http_code}\\n' ${url}`;

function statusOf(output: string): number[] {
  return [...output.matchAll(/^(\d{3})$/gm)].map((m) => Number(m[1]));
}

/** Waits until a root-run command shows up in /status for the token holder. */
async function waitRunning(url: string, marker: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as { running: Array<{ command: string | null }> };
    if (body.running.some((c) => c.command?.includes(marker))) return;
    await sleep(100);
  }
  throw new Error(`${marker} never showed up in /status`);
}

describe('HTTP token: an unprivileged local account cannot drain or read command lines', () => {
  const missing = notRoot();
  let gw: TestGateway;
  let secretJob: (Promise<RunResult> & { child: ChildProcess }) | undefined;
  const tokenDir = mkdtempSync(join(tmpdir(), 'execgate-token-'));
  const tokenFile = join(tokenDir, 'http-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

  beforeAll(async () => {
    if (missing) return;
    // Exactly the reported set-up: an inline http.token, the gateway started as root.
    gw = await startTestGateway({ http: { token: TOKEN } });
    secretJob = ssh(gw.port, gw.keys.ed25519, `sleep 30 # deploy --password=${SECRET}`);
    await waitRunning(gw.httpUrl!, SECRET);
  });
  afterAll(async () => {
    secretJob?.child.kill();
    await secretJob;
    await gw?.stop();
    rmSync(tokenDir, { recursive: true, force: true });
  });

  labIt('a job run through ssh that drops to nobody gets 401 on /admin/drain and no command lines', missing, async () => {
    const url = gw.httpUrl!;
    const job = await ssh(
      gw.port,
      gw.keys.ed25519,
      [curlAsNobody('GET', `${url}/status`), curlAsNobody('GET', `${url}/`), curlAsNobody('POST', `${url}/admin/drain`), curlAsNobody('POST', `${url}/admin/undrain`)].join('; '),
    );
    expect(job.stderr).toBe('');
    const out = job.stdout.toString();
    expect(statusOf(out)).toEqual([200, 200, 401, 401]);
    expect(out).not.toContain(SECRET);
    expect(out).toContain('"commandLines":"hidden"');
    expect(out).toContain('drain needs \\"Authorization: Bearer <token>\\"');
    const status = (await (await fetch(`${url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { drain: { phase: string } };
    expect(status.drain.phase).toBe('active');
    expect((await ssh(gw.port, gw.keys.ed25519, 'echo still-serving')).stdout.toString()).toBe('still-serving\n');
  });

  labIt('the same from a process of the test dropped to nobody, and from root without the token', missing, async () => {
    const url = gw.httpUrl!;
    const asNobody = await run('sh', ['-c', [curlAsNobody('GET', `${url}/status`), curlAsNobody('POST', `${url}/admin/drain`)].join('; ')]);
    expect(statusOf(asNobody.stdout.toString())).toEqual([200, 401]);
    expect(asNobody.stdout.toString()).not.toContain(SECRET);
    // Root on loopback without the token: no longer trusted either.
    const asRoot = await run('curl', ['-sS', '-X', 'POST', '-w', '\n%{http_code}\n', `${url}/admin/drain`]);
    expect(statusOf(asRoot.stdout.toString())).toEqual([401]);
    // The CLI without a token says what it tried.
    const cli = await run(process.execPath, [CLI, 'drain', '--url', url], { env: { ...process.env, EXECGATE_STATE_DIR: tokenDir + '-none' } });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toBe(
      `execgate: ${url} refused POST admin/drain (HTTP 401): drain needs "Authorization: Bearer <token>" with the token of this node's http.tokenFile (or http.token), from loopback too; on the node, "execgate drain" sends it (it reads the token file; or pass --token-file); sent no token; tried --token, --token-file and EXECGATE_HTTP_TOKEN (none given); ${tokenDir}-none/http-token: ENOENT; pass --token-file FILE (or --token, EXECGATE_HTTP_TOKEN)\n`,
    );
    const st = await run(process.execPath, [CLI, 'status', '--url', url], { env: { ...process.env, EXECGATE_STATE_DIR: tokenDir + '-none' } });
    expect(st.code).toBe(0);
    expect(st.stdout.toString()).toContain('(command hidden)');
    expect(st.stdout.toString()).not.toContain(SECRET);
    expect(st.stderr).toMatch(/^execgate: command lines hidden: they need the node's bearer token \(sent no token; tried /);
  });

  labIt('the owner with the token: execgate status shows command lines, drain and undrain work', missing, async () => {
    const url = gw.httpUrl!;
    const st = await run(process.execPath, [CLI, 'status', '--url', url, '--token-file', tokenFile]);
    expect(st.stderr).toBe('');
    expect(st.stdout.toString()).toContain(`sleep 30 # deploy --password=${SECRET}`);
    const d = await run(process.execPath, [CLI, 'drain', '--url', url], { env: { ...process.env, EXECGATE_HTTP_TOKEN: TOKEN } });
    expect(d.stderr).toBe('');
    expect(d.stdout.toString()).toMatch(/^gw-test: drain started; draining since /);
    const u = await run(process.execPath, [CLI, 'undrain', '--url', url, '--token-file', tokenFile]);
    expect(u.stderr).toBe('');
    expect(u.stdout.toString()).toMatch(/^gw-test: drain ended, accepting commands again/);
  });
});

describe('embedded defaults (execgate serve with no config): a generated token in the state directory', () => {
  const missing = notRoot();
  const cwd = mkdtempSync(join(tmpdir(), 'execgate-embedded-token-'));
  const state = join(cwd, '.execgate');
  let proc: ChildProcess | undefined;
  let out = '';

  const serve = () => {
    out = '';
    const p = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--http-port', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    return p;
  };
  const stop = async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  };
  /** The CLI as the owner, from the directory serve ran in (it finds ./.execgate/http-token). */
  const cliHere = (...args: string[]) => run('sh', ['-c', `cd ${cwd} && exec "$0" "$@"`, process.execPath, CLI, ...args]);

  afterAll(async () => {
    await stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  labIt(
    'status, drain and undrain work for the owner; nobody is refused; an open token file stops serve',
    missing,
    async () => {
      proc = serve();
      const sshLine = (await waitForOutput(proc, () => out, /^\s*(ssh -i .*)$/m))[1]!;
      const url = (await waitForOutput(proc, () => out, /Status page: (http:\/\/\S+)\//))[1]!;
      const tokenFile = join(state, 'http-token');
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(tokenFile, 'utf8')).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
      await waitForOutput(proc, () => out, new RegExp(`"tokenConfigured":true,"tokenFile":"${tokenFile}"[^\\n]*"msg":"http listening"`));

      // Runs until the test releases it, so the drain below surely finds it running.
      const release = join(cwd, 'release');
      const command = `while [ ! -e ${release} ]; do sleep 0.05; done # backup --key=${SECRET}`;
      const job = run('sh', ['-c', `cd ${cwd} && ${sshLine.replace(/'[^']*'$/, `'${command}'`).replace('ssh ', 'ssh -o BatchMode=yes ')}`]);
      let st: RunResult | undefined;
      for (let i = 0; i < 100; i++) {
        st = await cliHere('status', '--url', url);
        if (st.stdout.toString().includes(SECRET)) break;
        await sleep(100);
      }
      expect(st!.stderr).toBe('');
      expect(st!.stdout.toString()).toContain(command);
      // By default the CLI reads ./.execgate/http-token; --state-dir and EXECGATE_STATE_DIR name another.
      expect((await run(process.execPath, [CLI, 'status', '--url', url, '--state-dir', state])).stdout.toString()).toContain(SECRET);

      const nobody = await run('sh', ['-c', [curlAsNobody('GET', `${url}/status`), curlAsNobody('POST', `${url}/admin/drain`)].join('; ')]);
      expect(statusOf(nobody.stdout.toString())).toEqual([200, 401]);
      expect(nobody.stdout.toString()).not.toContain(SECRET);
      // nobody cannot read the owner's token file, and the CLI says which one it tried.
      const nobodyCli = await run('setpriv', [...NOBODY, process.execPath, CLI, 'drain', '--url', url, '--state-dir', state]);
      expect(nobodyCli.code).toBe(2);
      expect(nobodyCli.stderr).toContain(
        `sent no token; tried --token, --token-file and EXECGATE_HTTP_TOKEN (none given); ${tokenFile}: EACCES (not readable by this account: run as its owner or root)`,
      );

      const d = await cliHere('drain', '--url', url);
      expect(d.stderr).toBe('');
      expect(d.stdout.toString()).toMatch(/: drain started; draining since .*; 1 still running/);
      const u = await cliHere('undrain', '--url', url);
      expect(u.stderr).toBe('');
      expect(u.stdout.toString()).toMatch(/: drain ended, accepting commands again/);
      writeFileSync(release, '');
      expect((await job).code).toBe(0);

      // A token file open to others is refused at start, naming the key and the fix.
      await stop();
      chmodSync(tokenFile, 0o644);
      proc = serve();
      const code = await new Promise<number | null>((r) => proc!.once('exit', r));
      expect(code).toBe(2);
      expect(out).toContain(
        `execgate: http.tokenFile: ${tokenFile} has mode 0644, open to group or others (any local account could drain this node and read command lines): run "chmod 600 ${tokenFile}"`,
      );
    },
    60_000,
  );
});
