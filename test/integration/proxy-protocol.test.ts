import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, makeClientKeys, type TestGateway, type ClientKeys } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { startProxyRelay } from '../helpers/proxyRelay.js';
import { until } from '../helpers/until.js';

/** The trusted load balancer connects from 127.0.0.3; an impostor from 127.0.0.2. */
describe('PROXY protocol v2 from configured load balancers', () => {
  let gw: TestGateway;
  let fromKey: ClientKeys;
  const relays: Array<{ close: () => Promise<void> }> = [];
  beforeAll(async () => {
    gw = await startTestGateway({ proxyProtocol: { trustedProxies: ['127.0.0.3'] } });
    mkdirSync(join(gw.dir, 'from'));
    fromKey = makeClientKeys(join(gw.dir, 'from'));
    const ak = join(gw.dir, 'authorized_keys');
    writeFileSync(ak, readFileSync(ak, 'utf8') + `from="198.18.0.77" ${readFileSync(`${fromKey.ed25519}.pub`, 'utf8')}`);
  });
  afterAll(async () => {
    for (const r of relays) await r.close();
    await gw?.stop();
  });

  it('the command, from= and the audit see the real client behind the load balancer', async () => {
    const lb = await startProxyRelay(gw.port, '127.0.0.3', { address: '198.18.0.77', port: 40123 });
    relays.push(lb);
    const r = await ssh(lb.port, fromKey.ed25519, 'echo $SSH_CONNECTION');
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toMatch(/^198\.18\.0\.77 40123 /);
    expect(await until(() => gw.audit().some((a) => a.client === '198.18.0.77:40123'), 3000)).not.toBeNull();
    // the same key straight from 127.0.0.1 is refused by from=
    expect((await ssh(gw.port, fromKey.ed25519, 'true')).code).toBe(255);
  });

  it('a PROXY header from an address that is not a configured load balancer is refused', async () => {
    const impostor = await startProxyRelay(gw.port, '127.0.0.2', { address: '198.18.0.77', port: 40124 });
    relays.push(impostor);
    const r = await ssh(impostor.port, fromKey.ed25519, 'echo should-not-run');
    expect(r.code).toBe(255);
    expect(r.stdout.toString()).toBe('');
  });

  it('a trusted load balancer that sends no PROXY header is refused with a reason', async () => {
    const { connect } = await import('node:net');
    const text = await new Promise<string>((resolve) => {
      let got = '';
      const s = connect({ port: gw.port, host: '127.0.0.1', localAddress: '127.0.0.3' }, () => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(text).toMatch(/execgate: bad PROXY header from load balancer 127\.0\.0\.3/);
  });

  it('ordinary clients (not load balancers) connect without a header', async () => {
    const r = await ssh(gw.port, gw.keys.ed25519, 'echo direct');
    expect(r.stdout.toString()).toBe('direct\n');
  });
});
