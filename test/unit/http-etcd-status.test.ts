import { describe, expect, it } from 'vitest';
import { etcdView, statusView, type StatusSources } from '../../src/http/status.js';
import { renderPage } from '../../src/http/page.js';
import { parseConfig } from '../../src/config/load.js';

const config = parseConfig({ hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: '/tmp/a' } }, 'test.yaml', '/tmp');

function sources(etcd?: StatusSources['etcd']): StatusSources {
  const now = Date.now();
  return {
    node: 'gw1',
    config,
    leadership: {
      kind: 'etcd',
      current: () => ({ role: 'leader', token: 7n, leader: 'gw1', since: now }),
      status: () => ({ phase: 'active', since: null, deadline: null, timeoutSeconds: 0, error: null }) as never,
      drain: () => ({}) as never,
      undrain: async () => ({}) as never,
    },
    registry: { listRunning: () => [], listRecent: () => [] },
    hostKeys: [],
    listen: () => [],
    startedAt: now,
    ...(etcd ? { etcd } : {}),
  };
}
const health = { ok: true, reason: null, checks: {} } as never;

describe('/status and the page say how etcd is reached', () => {
  it('tls, auth and insecure from the connection block', () => {
    expect(etcdView({ endpoints: ['https://198.18.0.11:2379'], tls: { caFile: '/a', certFile: '/b', keyFile: '/c' }, auth: { user: 'execgate', passwordFile: '/p' }, insecure: false })).toEqual({
      tls: true,
      auth: true,
      insecure: false,
    });
    expect(etcdView({ endpoints: ['http://198.18.0.11:2379'], insecure: true })).toEqual({ tls: false, auth: false, insecure: true });
    expect(etcdView({ endpoints: ['https://198.18.0.11:2379'], insecure: false })).toEqual({ tls: true, auth: false, insecure: false });
  });

  it('null without etcd; a visible warning on the page for plain HTTP or no auth, none when both are on', () => {
    expect(statusView(sources(), health, false).etcd).toBeNull();
    expect(renderPage(statusView(sources(), health, false))).not.toContain('etcd-insecure');

    const plain = statusView(sources({ endpoints: ['http://198.18.0.11:2379'], insecure: true }), health, false);
    expect(plain.etcd).toEqual({ tls: false, auth: false, insecure: true });
    const page = renderPage(plain);
    expect(page).toMatch(/<p id="etcd-insecure" class="banner bad" data-tls="false" data-auth="false" data-insecure="true">etcd is not protected: plain HTTP/);
    expect(page).toContain('execgate etcd-setup --apply');

    const noAuth = renderPage(statusView(sources({ endpoints: ['https://198.18.0.11:2379'], insecure: false }), health, false));
    expect(noAuth).toContain('data-insecure="false"');
    expect(noAuth).toContain('no authentication');
    expect(noAuth).not.toContain('plain HTTP');

    const good = statusView(sources({ endpoints: ['https://198.18.0.11:2379'], auth: { user: 'execgate', passwordFile: '/p' }, insecure: false }), health, false);
    expect(renderPage(good)).not.toContain('etcd-insecure');
  });
});
