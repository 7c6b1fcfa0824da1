/**
 * The lab's client host: runs inside the client namespace, reads one JSON request per
 * stdin line and writes one JSON answer per stdout line. Every SSH operation is a NEW
 * connection with ONE session channel, like Rundeck (ssh2's client, publickey auth,
 * env requests for RD_JOB_EXECID, TCP keepalive-style SSH keepalives so a dead peer
 * is noticed in ~2 s instead of never).
 *
 *   {"id":1,"op":"exec","host":"198.18.0.100","port":22,"command":"...","env":{..},"timeoutMs":30000}
 *   {"id":2,"op":"scp","host":..,"port":..,"path":"/tmp/..","content":"..."}        scp -t sink upload
 *   {"id":3,"op":"http","url":"http://..","method":"GET","token":"..","headers":{..},"body":"..","timeoutMs":2000}
 *   {"id":4,"op":"https","url":"https://..","method":"POST","ca":FILE,"cert":FILE,"key":FILE,"headers":{..},"body":".."}
 *        raw HTTPS with exactly the credentials given (none: no client certificate)
 *   {"id":5,"op":"etcd","settings":{endpoints,tls,auth,insecure},"node":"gw1","call":"/v3/..","request":{..}}
 *   {"id":6,"op":"etcd","settings":..,"node":..,"range":"/prefix/"}
 *        execgate's own etcd client (connectEtcd: mutual TLS, login) with those settings
 * answers {"id":1,"code":0,"stdout":"..","stderr":"..","error":null,"t0":ms,"t1":ms}
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import { Client } from 'ssh2';
import type { EtcdConnectionSettings } from '../../../src/config/etcdConnection.js';
import type { EtcdClient } from '../../../src/etcd/client.js';
import { connectEtcd } from '../../../src/etcd/connect.js';

interface Request {
  id: number;
  op: 'exec' | 'scp' | 'http' | 'https' | 'etcd';
  host?: string;
  port?: number;
  command?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** TCP connect plus SSH handshake (ssh2's readyTimeout); 5000 unless given. */
  connectTimeoutMs?: number;
  path?: string;
  content?: string;
  url?: string;
  method?: string;
  token?: string;
  headers?: Record<string, string>;
  body?: string;
  /** https: PEM files (absent: not sent; without ca the server is not verified). */
  ca?: string;
  cert?: string;
  key?: string;
  /** etcd: the connection block and the node whose %n paths it uses. */
  settings?: EtcdConnectionSettings;
  node?: string;
  /** etcd: the JSON gateway path to POST with `request` as its body, or a prefix to range. */
  call?: string;
  request?: unknown;
  range?: string;
}

const key = readFileSync(process.argv[2] ?? '', 'utf8');
const user = process.argv[3] ?? 'root';
const write = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

function connect(host: string, port: number, onReady: (c: Client) => void, onFail: (err: string) => void, readyTimeout = 5000): Client {
  const c = new Client();
  let settled = false;
  c.once('ready', () => {
    settled = true;
    onReady(c);
  });
  c.on('error', (err) => {
    if (!settled) {
      settled = true;
      onFail(`connect: ${err.message}`);
    }
  });
  c.connect({ host, port, username: user, privateKey: key, readyTimeout, keepaliveInterval: 500, keepaliveCountMax: 4 });
  return c;
}

function exec(r: Request): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let code: number | null = null;
    let signal: string | null = null;
    let done = false;
    const finish = (error: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        conn.end();
      } catch {
        // gone
      }
      resolve({ id: r.id, code, signal, stdout, stderr, error, t0, t1: Date.now() });
    };
    const timer = setTimeout(() => finish(`no answer within ${r.timeoutMs ?? 30000} ms`), r.timeoutMs ?? 30000);
    const conn = connect(
      r.host!,
      r.port!,
      (c) => {
        c.exec(r.command!, { env: r.env ?? {} }, (err, ch) => {
          if (err) return finish(`exec: ${err.message}`);
          ch.on('data', (d: Buffer) => (stdout += d.toString()));
          ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          ch.on('exit', (c2: number | null, sig?: string) => {
            code = c2;
            signal = sig ?? null;
          });
          ch.on('close', () => finish(code === null ? 'channel closed without an exit status' : null));
        });
        c.on('close', () => finish(code === null ? 'connection closed without an exit status' : null));
        c.on('error', (e) => finish(`connection: ${e.message}`));
      },
      (e) => finish(e),
      r.connectTimeoutMs,
    );
  });
}

/** The scp sink protocol (`scp -t path`), as Ant/JSch speak it. */
function scp(r: Request): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (error: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        conn.end();
      } catch {
        // gone
      }
      resolve({ id: r.id, code: error ? 1 : 0, error, t0, t1: Date.now() });
    };
    const timer = setTimeout(() => finish('scp: no answer'), r.timeoutMs ?? 15000);
    const conn = connect(
      r.host!,
      r.port!,
      (c) => {
        c.exec(`scp -t ${r.path}`, (err, ch) => {
          if (err) return finish(`exec: ${err.message}`);
          const content = Buffer.from(r.content ?? '');
          const name = r.path!.slice(r.path!.lastIndexOf('/') + 1);
          const steps = [() => ch.write(`C0644 ${content.length} ${name}\n`), () => ch.write(Buffer.concat([content, Buffer.from([0])])), () => finish(null)];
          ch.on('data', (d: Buffer) => {
            if (d[0] !== 0) return finish(`scp: ${d.toString().trim()}`);
            steps.shift()?.();
          });
          ch.on('close', () => finish('scp: channel closed early'));
        });
        c.on('error', (e) => finish(`connection: ${e.message}`));
      },
      (e) => finish(e),
    );
  });
}

async function http(r: Request): Promise<Record<string, unknown>> {
  try {
    const res = await fetch(r.url!, {
      method: r.method ?? 'GET',
      headers: { ...(r.headers ?? {}), ...(r.token ? { authorization: `Bearer ${r.token}` } : {}) },
      ...(r.body !== undefined ? { body: r.body } : {}),
      signal: AbortSignal.timeout(r.timeoutMs ?? 2000),
    });
    return { id: r.id, status: res.status, body: await res.text() };
  } catch (err) {
    return { id: r.id, status: 0, error: (err as Error).message };
  }
}

/** One HTTPS request with exactly the credentials asked for; a refused handshake comes back as error and code. */
function https(r: Request): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const body = r.body ?? '';
    const req = httpsRequest(
      r.url!,
      {
        method: r.method ?? 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...(r.headers ?? {}) },
        agent: false,
        ...(r.ca ? { ca: readFileSync(r.ca) } : { rejectUnauthorized: false }),
        ...(r.cert ? { cert: readFileSync(r.cert) } : {}),
        ...(r.key ? { key: readFileSync(r.key) } : {}),
        timeout: r.timeoutMs ?? 3000,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ id: r.id, status: res.statusCode, body: text }));
        res.on('error', (err: NodeJS.ErrnoException) => resolve({ id: r.id, status: 0, error: err.message, code: err.code ?? null }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ id: r.id, status: 0, error: err.message, code: err.code ?? null }));
    req.end(body);
  });
}

const etcdClients = new Map<string, EtcdClient>();

/** execgate's etcd client with the given settings (one per settings and node, kept). */
async function etcd(r: Request): Promise<Record<string, unknown>> {
  try {
    const k = JSON.stringify([r.settings, r.node]);
    let c = etcdClients.get(k);
    if (!c) {
      c = connectEtcd(r.settings!, { node: r.node ?? '', key: 'lab', requestTimeoutMs: r.timeoutMs ?? 2000 });
      etcdClients.set(k, c);
    }
    if (r.range !== undefined) {
      const { kvs, revision } = await c.rangePrefix(r.range);
      return {
        id: r.id,
        ok: true,
        result: { revision: String(revision), kvs: kvs.map((kv) => ({ ...kv, createRevision: String(kv.createRevision), modRevision: String(kv.modRevision), version: String(kv.version) })) },
      };
    }
    return { id: r.id, ok: true, result: await c.call(r.call!, r.request ?? {}) };
  } catch (err) {
    return { id: r.id, ok: false, error: (err as Error).message };
  }
}

const OPS = { exec, scp, http, https, etcd } as const;

createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const r = JSON.parse(line) as Request;
  const p = (OPS[r.op] ?? http)(r);
  void p.then(write, (err: Error) => write({ id: r.id, error: err.message }));
});
process.stdin.on('end', () => process.exit(0));
write({ id: 0, ready: true });
