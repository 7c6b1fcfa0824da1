import { describe, expect, it } from 'vitest';

describe('EtcdClient over a fake fetch', () => {
  const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  it('fails over to the next endpoint on refusal and timeout, then prefers the one that answered', async () => {
    const seen: string[] = [];
    const fakeFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      seen.push(url);
      if (url.startsWith('http://a')) throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
      if (url.startsWith('http://b')) {
        // a black hole: only the per-request timeout ends it
        return new Promise<Response>((_, reject) => init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason)));
      }
      return json({ header: { revision: '5' }, ID: '42', TTL: '3' });
    }) as typeof fetch;
    const { EtcdClient } = await import('../../src/etcd/client.js');
    const client = new EtcdClient({ endpoints: ['http://a:1', 'http://b:1/', 'http://c:1'], requestTimeoutMs: 50, fetch: fakeFetch });
    expect(await client.grantLease(1)).toEqual({ id: '42', ttlSeconds: 3 });
    expect(seen).toEqual(['http://a:1/v3/lease/grant', 'http://b:1/v3/lease/grant', 'http://c:1/v3/lease/grant']);
    seen.length = 0;
    await client.grantLease(1);
    expect(seen).toEqual(['http://c:1/v3/lease/grant']);
  });

  it('reports every endpoint when none answers, and does not retry an answer from etcd elsewhere', async () => {
    const { EtcdClient, EtcdUnavailableError } = await import('../../src/etcd/client.js');
    const down = new EtcdClient({
      endpoints: ['http://a:1', 'http://b:1'],
      requestTimeoutMs: 50,
      fetch: (async () => {
        throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
      }) as typeof fetch,
    });
    await expect(down.keepAlive('1')).rejects.toThrow(EtcdUnavailableError);
    await expect(down.keepAlive('1')).rejects.toThrow(/http:\/\/a:1: ECONNREFUSED; http:\/\/b:1: ECONNREFUSED/);
    let calls = 0;
    const answering = new EtcdClient({
      endpoints: ['http://a:1', 'http://b:1'],
      requestTimeoutMs: 50,
      fetch: (async () => {
        calls++;
        return json({ error: 'etcdserver: requested lease not found', message: 'etcdserver: requested lease not found', code: 5 }, 404);
      }) as typeof fetch,
    });
    await answering.revokeLease('7'); // already gone: not an error
    expect(calls).toBe(1);
    // a keepalive for an unknown lease answers without TTL: 0
    const ka = new EtcdClient({ endpoints: ['http://a:1'], requestTimeoutMs: 50, fetch: (async () => json({ result: { ID: '7' } })) as typeof fetch });
    expect(await ka.keepAlive('7')).toEqual({ ttlSeconds: 0 });
  });
});

describe('EtcdClient with etcd authentication, over a fake fetch', () => {
  type Call = { url: string; headers: Record<string, string>; body: Record<string, unknown> };
  const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const auth = (password = () => 'a-password-of-enough-length') => ({ user: 'execgate', password, key: 'leadership.etcd.auth', passwordFile: '/etc/execgate/etcd/password' });

  /** A member with auth on: tokens t1, t2, … per login; `expire()` invalidates the current one. */
  function member() {
    const calls: Call[] = [];
    let issued = 0;
    let valid = '';
    const fake = async (url: string, init: { headers: Record<string, string>; body: string }) => {
      const body = JSON.parse(init.body) as Record<string, unknown>;
      calls.push({ url, headers: init.headers, body });
      if (url.endsWith('/v3/auth/authenticate')) {
        if (body.password !== 'a-password-of-enough-length') return json({ error: 'x', message: 'etcdserver: authentication failed, invalid user ID or password', code: 3 }, 400);
        valid = `t${++issued}`;
        return json({ token: valid });
      }
      if (!init.headers.authorization) return json({ error: 'x', message: 'etcdserver: user name is empty', code: 3 }, 400);
      if (init.headers.authorization !== valid) return json({ error: 'x', message: 'etcdserver: invalid auth token', code: 16 }, 401);
      return json({ header: { revision: '5' }, ID: '42', TTL: '3' });
    };
    return { calls, fake, expire: () => (valid = 'expired') };
  }

  it('logs in once, sends the token on every request, and logs in again once when etcd refuses it', async () => {
    const { EtcdClient } = await import('../../src/etcd/client.js');
    const m = member();
    const client = new EtcdClient({ endpoints: ['http://a:1'], requestTimeoutMs: 50, fetch: m.fake, auth: auth() });
    await client.grantLease(1);
    await client.grantLease(1);
    expect(m.calls.map((c) => c.url.replace('http://a:1', ''))).toEqual(['/v3/auth/authenticate', '/v3/lease/grant', '/v3/lease/grant']);
    expect(m.calls[0]!.body).toEqual({ name: 'execgate', password: 'a-password-of-enough-length' });
    expect(m.calls[1]!.headers.authorization).toBe('t1');
    m.expire();
    m.calls.length = 0;
    expect(await client.grantLease(1)).toEqual({ id: '42', ttlSeconds: 3 });
    expect(m.calls.map((c) => `${c.url.replace('http://a:1', '')} ${c.headers.authorization ?? '-'}`)).toEqual(['/v3/lease/grant t1', '/v3/auth/authenticate -', '/v3/lease/grant t2']);
  });

  it('a refused login names the password file, and the file is read again at the next login (rotation)', async () => {
    const { EtcdClient } = await import('../../src/etcd/client.js');
    const m = member();
    let password = 'an-old-password-no-longer-valid';
    const client = new EtcdClient({ endpoints: ['http://a:1'], requestTimeoutMs: 50, fetch: m.fake, auth: auth(() => password) });
    await expect(client.grantLease(1)).rejects.toThrow(/refused the login of user "execgate".*leadership\.etcd\.auth\.passwordFile \(\/etc\/execgate\/etcd\/password\)/);
    password = 'a-password-of-enough-length';
    expect(await client.grantLease(1)).toEqual({ id: '42', ttlSeconds: 3 });
  });

  it('says what to run when auth is off in etcd, when the user has no role, and when auth is on but not configured here', async () => {
    const { EtcdClient } = await import('../../src/etcd/client.js');
    const off = new EtcdClient({
      endpoints: ['http://a:1'],
      requestTimeoutMs: 50,
      fetch: async () => json({ error: 'x', message: 'etcdserver: authentication is not enabled', code: 9 }, 400),
      auth: auth(),
    });
    await expect(off.grantLease(1)).rejects.toThrow(/authentication off, but leadership\.etcd\.auth is set: enable it with execgate etcd-setup/);
    const m = member();
    const denied = new EtcdClient({
      endpoints: ['http://a:1'],
      requestTimeoutMs: 50,
      auth: auth(),
      fetch: async (url, init) => (url.endsWith('/authenticate') ? m.fake(url, init) : json({ error: 'x', message: 'etcdserver: permission denied', code: 7 }, 403)),
    });
    await expect(denied.grantLease(1)).rejects.toThrow(/permission denied: etcd user "execgate" has no role for these keys; grant it with execgate etcd-setup/);
    const none = new EtcdClient({ endpoints: ['http://a:1'], requestTimeoutMs: 50, fetch: m.fake });
    await expect(none.grantLease(1)).rejects.toThrow(/user name is empty: etcd has authentication on; set the etcd user in auth/);
  });

  it('a member that refuses a client certificate with a common name is told in words, naming the file', async () => {
    const { EtcdClient, EtcdUnavailableError } = await import('../../src/etcd/client.js');
    const tls = {
      key: 'leadership.etcd.tls',
      caFile: '/c/ca.pem',
      certFile: '/c/client.pem',
      keyFile: '/c/k.pem',
      ca: Buffer.alloc(0),
      cert: Buffer.alloc(0),
      privateKey: Buffer.alloc(0),
      certNotAfter: new Date(),
    };
    const client = new EtcdClient({
      endpoints: ['https://a:1'],
      requestTimeoutMs: 50,
      tls,
      fetch: async () => new Response('CommonName of client sending a request against gateway will be ignored and not used as expected\n', { status: 400 }),
    });
    const err = await client.grantLease(1).catch((e: Error) => e);
    expect(err).toBeInstanceOf(EtcdUnavailableError);
    expect((err as Error).message).toBe('https://a:1: the member refuses leadership.etcd.tls.certFile (/c/client.pem) because it has a common name (CN); make one without (execgate certs does)');
  });
});
