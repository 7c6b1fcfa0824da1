import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpApp } from '../../src/http/app.js';
import { HealthMonitor } from '../../src/http/health.js';
import { listenHttp, type HttpListener } from '../../src/http/server.js';
import { DrainController } from '../../src/leadership/handover/drain.js';
import { CommandRegistry } from '../../src/exec/registry.js';
import type { RunningCommand } from '../../src/exec/runner.js';
import { createMetrics } from '../../src/metrics.js';
import { parseConfig } from '../../src/config/load.js';
import { FakeLeadership } from '../helpers/fakeLeadership.js';
import { call } from '../helpers/httpCall.js';

/** The HTTP app called by curl as other local accounts (setpriv): who may drain and read command lines. */

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** curl as another account (setpriv drops to it): the unprivileged local process of finding 12. */
async function curlAs(uid: number, method: string, url: string, header?: string): Promise<{ status: number; text: string }> {
  const h = header ? ['-H', header] : [];
  const { stdout } = await promisify(execFile)('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'curl', '-sS', ...h, '-X', method, '-w', '\n%{http_code}', url]);
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), text: stdout.slice(0, cut) };
}

describe('the HTTP app without a token: only the owner on loopback', () => {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-http-owner-'));
  const auditPath = join(dir, 'audit.jsonl');
  writeFileSync(auditPath, '');
  const config = parseConfig({ hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: auditPath } }, 'test.yaml', dir);
  const health = new HealthMonitor({ ssh: { listening: true }, audit: { path: auditPath, error: null } });
  const source = new FakeLeadership('gw1');
  const drain = new DrainController(source, { running: () => 0, terminate: async () => {}, timeoutSeconds: 600, pollMs: 10 });
  const registry = new CommandRegistry();
  let server: HttpListener;

  beforeAll(async () => {
    const app = createHttpApp({
      node: 'gw1',
      config,
      leadership: drain,
      registry,
      health,
      metrics: createMetrics('gw1', 'native'),
      hostKeys: [],
      listen: () => ['127.0.0.1:2222'],
      startedAt: Date.now(),
    });
    server = await listenHttp(app, '127.0.0.1', 0);
    registry.add({ execId: '66666666-ffff', user: 'root', command: 'backup --key=hunter2', client: '127.0.0.1:40000', startedAt: Date.now(), pid: 4242, token: '7' }, {} as RunningCommand);
  });
  afterAll(async () => {
    await server.close();
    health.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!isRoot)('another local account cannot drain nor read command lines; root can', async () => {
    const url = `http://127.0.0.1:${server.port}`;
    const s = await curlAs(NOBODY, 'GET', `${url}/status`);
    expect(s.status).toBe(200);
    expect(JSON.parse(s.text)).toMatchObject({ commandLines: 'hidden', running: [{ id: '66666666-ffff', command: null }] });
    expect((await curlAs(NOBODY, 'GET', `${url}/`)).text).not.toContain('hunter2');
    const d = await curlAs(NOBODY, 'POST', `${url}/admin/drain`);
    expect(d.status).toBe(403);
    expect(JSON.parse(d.text).error).toBe(
      'drain without a token is allowed only from loopback, to root or the account execgate runs as; to allow other callers set http.tokenFile (a mode 0600 file holding the token) and send "Authorization: Bearer <token>"',
    );
    expect(drain.status().phase).toBe('active');
    // Any bearer token is wrong when none is configured (the owner's is ignored: see below).
    const t = await curlAs(NOBODY, 'GET', `${url}/status`, 'Authorization: Bearer some-token-of-length-16');
    expect(t.status).toBe(401);
    expect(JSON.parse(t.text).error).toMatch(/^this node has no http.token or http.tokenFile, so it accepts no bearer token: set http.tokenFile/);
    // A browser tricked by DNS rebinding runs as the owner, but names another host.
    const rebind = await call(server.port, 'GET', '/status', { headers: { host: 'rebind.attacker.example:9422' } });
    expect(rebind.json.running[0].command).toBeNull();
    expect((await call(server.port, 'POST', '/admin/drain', { headers: { host: 'rebind.attacker.example' } })).status).toBe(403);
    // The owner (root here, as the gateway) is trusted on loopback.
    const own = await call(server.port, 'GET', '/status', { headers: { host: `localhost:${server.port}` } });
    expect(own.json.running[0].command).toBe('backup --key=hunter2');
    const ownWithToken = await call(server.port, 'GET', '/status', { headers: { authorization: 'Bearer a-token-of-another-gateway' } });
    expect(ownWithToken.json.running[0].command).toBe('backup --key=hunter2');
    const ok = await curlAs(0, 'POST', `${url}/admin/drain`);
    expect(ok.status).toBe(200);
    expect(drain.status().phase).not.toBe('active');
    expect((await call(server.port, 'POST', '/admin/undrain')).status).toBe(200);
  });
});
