import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, CLI, type TestGateway } from '../helpers/gateway.js';
import { ssh, run } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
async function get(gw: TestGateway, path: string): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(`${gw.httpUrl}${path}`);
  const text = await res.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    // metrics, page
  }
  return { status: res.status, body, text };
}

const cli = (gw: TestGateway, ...args: string[]) => run(process.execPath, [CLI, ...args, '--url', gw.httpUrl!]);

/** Waits until /status lists a running command whose line contains marker. */
async function waitRunning(gw: TestGateway, marker: string): Promise<void> {
  const listed = await until(async () => (await get(gw, '/status')).body.running.some((c: any) => String(c.command).includes(marker)), 10_000, 100);
  if (listed === null) throw new Error(`command ${marker} never showed up in /status`);
}

async function metric(gw: TestGateway, pattern: RegExp): Promise<number | null> {
  const m = (await get(gw, '/metrics')).text.match(pattern);
  return m ? Number(m[1]) : null;
}

describe('HTTP surface of a real gateway (static leadership)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('listens on its own ephemeral port and logs it', () => {
    expect(gw.httpPort).toBeGreaterThan(0);
    expect(gw.httpPort).not.toBe(gw.port);
    expect(gw.output()).toMatch(/"msg":"http listening"/);
  });

  it('a healthy single node is healthy, ready and the leader', async () => {
    const h = await get(gw, '/healthz');
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: 'ok', node: 'gw-test', checks: { ssh: { ok: true }, audit: { ok: true }, disk: { ok: true }, eventLoop: { ok: true } } });
    const r = await get(gw, '/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ready', role: 'leader' });
    const l = await get(gw, '/leader');
    expect(l.status).toBe(200);
    expect(l.body).toMatchObject({ node: 'gw-test', token: '1' });
    expect(new Date(l.body.since).getTime()).toBeLessThanOrEqual(Date.now());
    const m = (await get(gw, '/metrics')).text;
    expect(m).toMatch(/^execgate_leader\{node="gw-test"\} 1$/m);
    expect(m).toMatch(/^execgate_fencing_token\{node="gw-test"\} 1$/m);
    expect(m).toMatch(/^execgate_build_info\{version="\d+\.\d+\.\d+[^"]*",ssh2_crypto="native",node="gw-test"\} 1$/m);
  });

  it('/status lists a running command, then the finished one; /metrics counts it', async () => {
    const marker = `status-${Date.now()}`;
    const job = ssh(gw.port, gw.keys.ed25519, `sleep 1.5; echo ${marker}`);
    await waitRunning(gw, marker);
    const s = await get(gw, '/status');
    expect(s.body).toMatchObject({ node: 'gw-test', role: 'leader', token: '1', leadership: 'static', commandLines: 'shown', drain: { phase: 'active' } });
    const running = s.body.running.find((c: any) => c.command.includes(marker));
    expect(running).toMatchObject({ user: 'root', token: '1' });
    expect(running.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(running.pid).toBeGreaterThan(1);
    expect(s.body.hostKeys.map((k: any) => k.type).sort()).toEqual(['ssh-ed25519', 'ssh-rsa']);
    expect(s.body.limits.maxCommandBytes).toBe(131071);
    expect((await job).code).toBe(0);
    const after = await get(gw, '/status');
    expect(after.body.running.some((c: any) => c.command.includes(marker))).toBe(false);
    expect(after.body.recent[0]).toMatchObject({ result: 'completed', exitStatus: 0 });
    expect(await metric(gw, /^execgate_commands_total\{result="completed",node="gw-test"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(await metric(gw, /^execgate_command_duration_seconds_count\{node="gw-test"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
  });

  it('execgate status prints the role, health and commands for a human', async () => {
    const r = await cli(gw, 'status');
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toMatch(/^gw-test is the leader \(token 1\), since /);
    expect(text).toContain('health:   ok');
    expect(text).toContain('drain:    not draining');
    expect(text).toMatch(/running: +0/);
    const json = await cli(gw, 'status', '--json');
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ node: 'gw-test', role: 'leader' });
  });

  it('drain: refuses new commands (exit 75), lets the running one finish, releases; undrain rejoins', async () => {
    const marker = `drain-${Date.now()}`;
    // The command runs until the test releases it (a fixed sleep raced a loaded machine).
    const release = join(gw.dir, `${marker}.release`);
    const job = ssh(gw.port, gw.keys.ed25519, `while [ ! -e ${release} ]; do sleep 0.05; done; echo ${marker}`);
    await waitRunning(gw, marker);

    const d = await cli(gw, 'drain');
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expect(d.stdout.toString()).toMatch(/^gw-test: drain started; draining since .*: refusing new commands; 1 still running, killed at .* if not done\n/);

    const refused = await ssh(gw.port, gw.keys.ed25519, 'echo must-not-run');
    expect(refused.code).toBe(75);
    expect(refused.stdout.toString()).toBe('');
    expect(refused.stderr).toContain('execgate: gw-test is draining; leader is gw-test (token 1); not running');
    expect(gw.audit().at(-1)).toMatchObject({ result: 'refused:draining', exitStatus: 75 });

    const r = await get(gw, '/readyz');
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ role: 'draining', reason: 'draining', detail: 'draining: 1 command still running' });
    expect((await get(gw, '/leader')).status).toBe(503);
    expect((await get(gw, '/healthz')).status).toBe(200);
    expect(await metric(gw, /^execgate_leader\{node="gw-test"\} (\d+)$/m)).toBe(0);
    expect(await metric(gw, /^execgate_leadership_transitions_total\{to="draining",node="gw-test"\} (\d+)$/m)).toBe(1);
    expect(await metric(gw, /^execgate_commands_refused_total\{reason="draining",node="gw-test"\} (\d+)$/m)).toBe(1);
    const page = (await get(gw, '/')).text;
    expect(page).toContain('data-role="draining"');
    expect(page).toContain('Drain: <b>draining</b>');

    // The running command is not disturbed.
    writeFileSync(release, '');
    const done = await job;
    expect(done.code).toBe(0);
    expect(done.stdout.toString()).toBe(`${marker}\n`);

    let phase = '';
    await until(async () => (phase = (await get(gw, '/status')).body.drain.phase) === 'drained', 5000, 100);
    expect(phase).toBe('drained');
    const s = (await get(gw, '/status')).body;
    expect(s).toMatchObject({ role: 'standby', token: null });
    expect((await get(gw, '/readyz')).body).toMatchObject({ reason: 'standby' });
    expect(gw.output()).toMatch(/"msg":"drain complete: leadership released"/);
    const st = await cli(gw, 'status');
    expect(st.stdout.toString()).toMatch(/^gw-test is standby; no other leader known \(released after drain\)/);
    expect(st.stdout.toString()).toContain('drain:    drained since');

    const u = await cli(gw, 'undrain');
    expect(u.code).toBe(0);
    expect(u.stdout.toString()).toBe('gw-test: drain ended, accepting commands again; gw-test is the leader (token 1)\n');
    expect((await get(gw, '/readyz')).status).toBe(200);
    expect(await metric(gw, /^execgate_leader\{node="gw-test"\} (\d+)$/m)).toBe(1);
    const again = await ssh(gw.port, gw.keys.ed25519, 'echo runs-again');
    expect(again.code).toBe(0);
    expect(again.stdout.toString()).toBe('runs-again\n');
    const u2 = await cli(gw, 'undrain');
    expect(u2.stdout.toString()).toMatch(/^gw-test: was not draining; gw-test is the leader/);
  });

  it('the CLI says what is wrong when the gateway cannot be reached or refuses', async () => {
    const closed = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => resolve(port));
      });
    });
    const down = await run(process.execPath, [CLI, 'status', '--url', `http://127.0.0.1:${closed}`]);
    expect(down.code).toBe(2);
    expect(down.stderr).toBe(`execgate: cannot reach execgate at http://127.0.0.1:${closed}: ECONNREFUSED (is "execgate serve" running with http.enabled? pass --url)\n`);
    // Without http.token/tokenFile only root and execgate's own account may drain, on loopback.
    const other = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, CLI, 'drain', '--url', gw.httpUrl!]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /refused POST admin\/drain \(HTTP 403\): drain without a token is allowed only from loopback, to root or the account execgate runs as; to allow other callers set http\.tokenFile/,
    );
    expect((await get(gw, '/status')).body.drain.phase).toBe('active');
  });
});

describe('drain timeout and --wait', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ drainTimeoutSeconds: 1 });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('kills what still runs at drainTimeoutSeconds, then releases; drain --wait returns then', async () => {
    const marker = `timeout-${Date.now()}`;
    const job = ssh(gw.port, gw.keys.ed25519, `sleep 60 # ${marker}`);
    await waitRunning(gw, marker);
    const d = await cli(gw, 'drain', '--wait');
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    const lines = d.stdout.toString().trim().split('\n');
    expect(lines[0]).toMatch(/drain started; draining since/);
    expect(lines.at(-1)).toMatch(/^gw-test: drained since .*: leadership released; "execgate undrain" to rejoin; gw-test is standby/);
    const killed = await job;
    expect(killed.code).toBe(143);
    // The end record (a start record is written when the command starts).
    const ended = () => gw.audit().find((a) => a.event !== 'start' && String(a.command).includes(marker));
    expect(await until(() => ended() !== undefined, 5000)).not.toBeNull();
    expect(ended()).toMatchObject({ result: 'killed', killReason: 'drain timeout (1 s)' });
    expect(gw.output()).toMatch(/drain timeout: killing the commands still running before releasing leadership/);
    expect((await cli(gw, 'undrain')).code).toBe(0);
  });
});

describe('http.enabled: false', () => {
  it('starts no HTTP listener', async () => {
    const gw = await startTestGateway({ http: { enabled: false } });
    try {
      expect(gw.httpPort).toBeNull();
      expect(gw.output()).not.toContain('http listening');
      expect((await ssh(gw.port, gw.keys.ed25519, 'echo ok')).code).toBe(0);
    } finally {
      await gw.stop();
    }
  });
});
