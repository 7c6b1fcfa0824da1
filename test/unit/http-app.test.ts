import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpApp } from '../../src/http/app.js';
import { HealthMonitor, HEALTH_LIMITS } from '../../src/http/health.js';
import { listenHttp, type HttpListener } from '../../src/http/server.js';
import { isLiteralHost, isLoopbackAddress } from '../../src/http/access.js';
import { decodeProcAddress } from '../../src/http/peer.js';
import { DrainController } from '../../src/leadership/handover/drain.js';
import { CommandRegistry } from '../../src/exec/registry.js';
import type { RunningCommand } from '../../src/exec/runner.js';
import { createMetrics } from '../../src/metrics.js';
import { parseConfig } from '../../src/config/load.js';
import { FakeLeadership } from '../helpers/fakeLeadership.js';
import { call } from '../helpers/httpCall.js';

const TOKEN = 'an-admin-token-of-some-length';
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** An address of this machine that is not loopback, to call the app as a remote client. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

describe('the HTTP app against a fake Leadership that flips roles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-http-unit-'));
  const auditPath = join(dir, 'audit.jsonl');
  writeFileSync(auditPath, '');
  const config = parseConfig({ hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: auditPath }, http: { token: TOKEN } }, 'test.yaml', dir);
  const ssh = { listening: true };
  const audit: { path: string; error: Error | null } = { path: auditPath, error: null };
  let source: FakeLeadership;
  let drain: DrainController;
  let registry: CommandRegistry;
  let health: HealthMonitor;
  let server: HttpListener;
  let port: number;
  let running = 0;
  const metrics = createMetrics('gw1', 'native');

  const addCommand = (id: string, command: string) => {
    registry.add({ execId: id, user: 'rundeck', command, client: '198.51.100.7:40000', startedAt: Date.now() - 1500, pid: 4242, token: '7' }, {} as RunningCommand);
  };

  beforeAll(async () => {
    const app = createHttpApp({
      node: 'gw1',
      config,
      // Each test swaps the leadership and registry; the app reads them through these getters.
      get leadership() {
        return drain;
      },
      get registry() {
        return registry;
      },
      health: { check: () => health.check() },
      metrics,
      hostKeys: [{ type: 'ssh-ed25519', fingerprint: 'SHA256:abc' }],
      listen: () => ['127.0.0.1:2222'],
      startedAt: Date.now(),
    });
    server = await listenHttp(app, external ? '0.0.0.0' : '127.0.0.1', 0);
    port = server.port;
  });
  afterAll(async () => {
    await server.close();
    health?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    health?.stop();
    ssh.listening = true;
    audit.error = null;
    health = new HealthMonitor({ ssh, audit });
    source = new FakeLeadership('gw1');
    registry = new CommandRegistry();
    running = 0;
    drain = new DrainController(source, { running: () => running, terminate: async () => {}, timeoutSeconds: 600, pollMs: 10 });
  });

  it('leader: healthz, readyz and leader answer 200', async () => {
    const h = await call(port, 'GET', '/healthz');
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({ status: 'ok', node: 'gw1', reason: null, checks: { ssh: { ok: true }, eventLoop: { ok: true }, audit: { ok: true }, disk: { ok: true } } });
    expect(h.headers['cache-control']).toBe('no-store');
    const r = await call(port, 'GET', '/readyz');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'ready', node: 'gw1', role: 'leader', reason: null });
    const l = await call(port, 'GET', '/leader');
    expect(l.status).toBe(200);
    expect(l.json).toEqual({ node: 'gw1', token: '7', since: new Date(source.current().since).toISOString() });
  });

  it('standby: healthy, not ready, /leader 503 naming the other leader', async () => {
    source.standBy('gw2', 9n);
    expect((await call(port, 'GET', '/healthz')).status).toBe(200);
    const r = await call(port, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ status: 'not ready', role: 'standby', reason: 'standby', detail: 'gw2 leads' });
    const l = await call(port, 'GET', '/leader');
    expect(l.status).toBe(503);
    expect(l.json).toMatchObject({ node: 'gw1', role: 'standby', leader: 'gw2', token: '9' });
    source.standBy(undefined, null);
    expect((await call(port, 'GET', '/leader')).json).toMatchObject({ leader: null, token: null });
  });

  it('fenced: not ready with reason fenced', async () => {
    source.fence();
    const r = await call(port, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ reason: 'fenced', detail: 'lease not renewed in time' });
    expect((await call(port, 'GET', '/leader')).status).toBe(503);
    expect((await call(port, 'GET', '/status')).json).toMatchObject({ role: 'fenced', token: null });
  });

  it('draining: not ready with reason draining, back to ready after undrain', async () => {
    running = 1;
    const d = await call(port, 'POST', '/admin/drain', { headers: AUTH });
    expect(d.status).toBe(200);
    expect(d.json).toMatchObject({ action: 'drain', changed: true, node: 'gw1', role: 'draining', drain: { phase: 'draining', timeoutSeconds: 600 } });
    const r = await call(port, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ role: 'draining', reason: 'draining', detail: 'draining: 1 command still running' });
    const l = await call(port, 'GET', '/leader');
    expect(l.status).toBe(503);
    expect(l.json).toMatchObject({ role: 'draining' });
    expect((await call(port, 'GET', '/healthz')).status).toBe(200);
    expect((await call(port, 'POST', '/admin/drain', { headers: AUTH })).json).toMatchObject({ changed: false });

    running = 0;
    await drain.drained();
    expect((await call(port, 'GET', '/readyz')).json).toMatchObject({ reason: 'standby' });
    expect((await call(port, 'GET', '/status')).json).toMatchObject({ role: 'standby', drain: { phase: 'drained' } });
    const u = await call(port, 'POST', '/admin/undrain', { headers: AUTH });
    expect(u.json).toMatchObject({ action: 'undrain', changed: true, role: 'leader', token: '8', drain: { phase: 'active' } });
    expect(source.calls).toEqual(['release', 'rejoin']);
    expect((await call(port, 'GET', '/readyz')).status).toBe(200);
  });

  it('unhealthy: SSH listener down, audit write failure, disk full', async () => {
    ssh.listening = false;
    let h = await call(port, 'GET', '/healthz');
    expect(h.status).toBe(503);
    expect(h.json).toMatchObject({ status: 'unhealthy', reason: 'ssh listener not accepting' });
    const r = await call(port, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.json.reason).toBe('unhealthy: ssh listener not accepting');

    ssh.listening = true;
    audit.error = new Error('ENOSPC: no space left on device, write');
    health.stop();
    health = new HealthMonitor({ ssh, audit });
    h = await call(port, 'GET', '/healthz');
    expect(h.status).toBe(503);
    expect(h.json.reason).toBe('audit log write failed: ENOSPC: no space left on device, write');

    audit.error = null;
    health.stop();
    health = new HealthMonitor({ ssh, audit }, { ...HEALTH_LIMITS, minFreeBytes: Number.MAX_SAFE_INTEGER });
    h = await call(port, 'GET', '/healthz');
    expect(h.status).toBe(503);
    expect(h.json.reason).toMatch(/^disk full: \d+ MiB free for the audit log/);

    health.stop();
    health = new HealthMonitor({ ssh, audit: { path: join(dir, 'missing-dir/audit.jsonl'), error: null } });
    h = await call(port, 'GET', '/healthz');
    expect(h.status).toBe(503);
    expect(h.json.reason).toMatch(/^audit log not writable: ENOENT/);
  });

  it('status: role, token, running and recent commands, host keys, limits; never the token', async () => {
    addCommand('11111111-aaaa', 'sleep 30 # secret=hunter2');
    addCommand('22222222-bbbb', 'false');
    registry.finish('22222222-bbbb', { endedAt: Date.now(), result: 'completed', status: 1 });
    const s = await call(port, 'GET', '/status', { headers: AUTH });
    expect(s.status).toBe(200);
    expect(s.json).toMatchObject({
      node: 'gw1',
      role: 'leader',
      token: '7',
      leader: 'gw1',
      leadership: 'fake',
      commandLines: 'shown',
      health: { ok: true, reason: null },
      drain: { phase: 'active' },
      listen: ['127.0.0.1:2222'],
      hostKeys: [{ type: 'ssh-ed25519', fingerprint: 'SHA256:abc' }],
      limits: { maxConnections: 2000, killGraceSeconds: 5 },
    });
    expect(s.json.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(s.json.running).toEqual([expect.objectContaining({ id: '11111111-aaaa', user: 'rundeck', command: 'sleep 30 # secret=hunter2', client: '198.51.100.7:40000', pid: 4242, token: '7' })]);
    expect(s.json.running[0].runningSeconds).toBeGreaterThanOrEqual(1);
    expect(s.json.recent).toEqual([expect.objectContaining({ id: '22222222-bbbb', command: 'false', result: 'completed', exitStatus: 1 })]);
    expect(s.text).not.toContain(TOKEN);
  });

  it('keeps only the last 100 finished commands', async () => {
    for (let i = 0; i < 130; i++) {
      addCommand(`c${i}`, `echo ${i}`);
      registry.finish(`c${i}`, { endedAt: Date.now(), result: 'completed', status: 0 });
    }
    const s = await call(port, 'GET', '/status');
    expect(s.json.recent).toHaveLength(100);
    expect(s.json.recent[0].id).toBe('c129');
  });

  it.skipIf(!external)('hides command lines from a non-loopback caller without the token', async () => {
    addCommand('33333333-cccc', 'deploy --password=hunter2');
    const hidden = await call(port, 'GET', '/status', { host: external });
    expect(hidden.json.commandLines).toBe('hidden');
    expect(hidden.json.running[0]).toMatchObject({ id: '33333333-cccc', command: null });
    expect(hidden.text).not.toContain('hunter2');
    const page = await call(port, 'GET', '/', { host: external });
    expect(page.text).not.toContain('hunter2');
    expect(page.text).toContain('hidden');
    const shown = await call(port, 'GET', '/status', { host: external, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(shown.json.running[0].command).toBe('deploy --password=hunter2');
  });

  it('with a token configured, loopback without it cannot drain and sees no command lines (issue 14, finding 12)', async () => {
    addCommand('44444444-dddd', 'deploy --password=hunter2');
    for (const host of [undefined, `127.0.0.1:${port}`, `localhost:${port}`]) {
      const headers = host ? { host } : undefined;
      const s = await call(port, 'GET', '/status', { headers });
      expect(s.status).toBe(200);
      expect(s.json.commandLines).toBe('hidden');
      expect(s.json.running[0]).toMatchObject({ id: '44444444-dddd', user: 'rundeck', command: null });
      expect(s.text).not.toContain('hunter2');
      const page = await call(port, 'GET', '/', { headers });
      expect(page.text).not.toContain('hunter2');
      expect(page.text).toContain('id="commands-hidden"');
      for (const action of ['drain', 'undrain']) {
        const a = await call(port, 'POST', `/admin/${action}`, { headers });
        expect(a.status).toBe(401);
        expect(a.headers['www-authenticate']).toBe('Bearer');
        expect(a.json.error).toBe(
          `${action} needs "Authorization: Bearer <token>" with the token of this node's http.tokenFile (or http.token), from loopback too; on the node, "execgate ${action}" sends it (it reads the token file; or pass --token-file)`,
        );
        expect(a.text).not.toContain('hunter2');
      }
    }
    expect(drain.status().phase).toBe('active');
    expect(source.calls).toEqual([]);
    // A wrong token is told so, on /status too (not a quiet "hidden").
    const wrong = await call(port, 'GET', '/status', { headers: { authorization: 'Bearer nope-nope-nope-nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toMatch(/^wrong bearer token: send the token of this node's http.tokenFile/);
    expect(wrong.text).not.toContain('hunter2');
    const shown = await call(port, 'GET', '/status', { headers: AUTH });
    expect(shown.json.running[0].command).toBe('deploy --password=hunter2');
    expect((await call(port, 'GET', '/', { headers: AUTH })).text).toContain('deploy --password=hunter2');
  });

  it.skipIf(!external)('admin: 401 for a remote caller without token or with a wrong one, 200 with the right one', async () => {
    const anon = await call(port, 'POST', '/admin/drain', { host: external });
    expect(anon.status).toBe(401);
    expect(anon.json.error).toMatch(/needs "Authorization: Bearer <token>"/);
    const wrong = await call(port, 'POST', '/admin/drain', { host: external, headers: { authorization: 'Bearer nope-nope-nope-nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer');
    expect(drain.status().phase).toBe('active');
    const ok = await call(port, 'POST', '/admin/drain', { host: external, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(drain.status().phase).not.toBe('active');
    const back = await call(port, 'POST', '/admin/undrain', { host: external, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(back.status).toBe(200);
  });

  it('admin: refuses cross-site browser requests even with the token', async () => {
    const xs = await call(port, 'POST', '/admin/drain', { headers: { ...AUTH, origin: 'https://evil.example', host: `127.0.0.1:${port}` } });
    expect(xs.status).toBe(403);
    const fetchSite = await call(port, 'POST', '/admin/drain', { headers: { ...AUTH, 'sec-fetch-site': 'cross-site' } });
    expect(fetchSite.status).toBe(403);
    const rebind = await call(port, 'POST', '/admin/drain', { headers: { host: 'rebind.attacker.example' } });
    expect(rebind.status).toBe(401);
    expect(drain.status().phase).toBe('active');
    expect((await call(port, 'GET', '/admin/drain')).status).toBe(404);
  });

  it('metrics: Prometheus text from the dedicated registry', async () => {
    metrics.commands.inc({ result: 'completed' });
    const m = await call(port, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      'execgate_commands_total',
      'execgate_leader',
      'execgate_fencing_token',
      'execgate_build_info',
      'execgate_process_cpu_seconds_total',
      'execgate_command_duration_seconds_bucket',
    ]) {
      expect(m.text).toContain(name);
    }
    expect(m.text).toMatch(/execgate_commands_total\{result="completed",node="gw1"\} 1/);
    // Gauges named *_total fail promtool's lint: left out, their per-type siblings stay.
    expect(m.text).toContain('# TYPE execgate_nodejs_active_handles gauge');
    expect(m.text).not.toContain('execgate_nodejs_active_handles_total');
    expect(m.text).not.toContain('execgate_nodejs_active_requests_total');
    expect(m.text).not.toContain('execgate_nodejs_active_resources_total');
  });

  it('the page shows role, leader, token and running commands, escaped', async () => {
    addCommand('55555555-eeee', 'echo "<script>alert(1)</script>"');
    const p = await call(port, 'GET', '/', { headers: AUTH });
    expect(p.status).toBe(200);
    expect(p.headers['content-type']).toMatch(/^text\/html/);
    expect(p.headers['content-security-policy']).toContain("default-src 'none'");
    expect(p.text).toContain('<meta http-equiv="refresh" content="2">');
    expect(p.text).toMatch(/<span id="role" class="role" data-role="leader">leader<\/span>/);
    expect(p.text).toContain('<dd id="token" class="mono">7</dd>');
    expect(p.text).toContain('data-exec-id="55555555-eeee"');
    expect(p.text).not.toContain('<script>');
    expect(p.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(p.text).not.toContain('commands-hidden');
    source.fence();
    expect((await call(port, 'GET', '/')).text).toMatch(/data-role="fenced"/);
  });

  it('unknown paths answer 404 JSON', async () => {
    const r = await call(port, 'GET', '/nope');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: 'no such endpoint: GET /nope' });
  });
});

describe('access helpers', () => {
  it('decodes /proc/net/tcp addresses', () => {
    expect(decodeProcAddress('0100007F:2496')).toEqual({ address: '127.0.0.1', port: 9366 });
    expect(decodeProcAddress('0000000000000000FFFF00000100007F:0016')).toEqual({ address: '127.0.0.1', port: 22 });
    expect(decodeProcAddress('00000000000000000000000001000000:0050')).toEqual({ address: '::1', port: 80 });
    expect(decodeProcAddress('nonsense')).toBeNull();
  });
  it('recognises loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '192.0.2.2', 'fe80::1', undefined]) expect(isLoopbackAddress(a)).toBe(false);
  });
  it('accepts only literal hosts', () => {
    for (const h of ['127.0.0.1:9422', 'localhost', 'localhost:9422', '[::1]:9422', '10.1.2.3', undefined]) expect(isLiteralHost(h)).toBe(true);
    for (const h of ['evil.example', 'evil.example:9422', 'localhost.evil.example']) expect(isLiteralHost(h)).toBe(false);
  });
});
