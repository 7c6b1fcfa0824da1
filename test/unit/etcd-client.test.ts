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
