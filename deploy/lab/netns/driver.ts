/**
 * The lab's client host: runs inside the client namespace, reads one JSON request per
 * stdin line and writes one JSON answer per stdout line. Every SSH operation is a NEW
 * connection with ONE session channel, like Rundeck (ssh2's client, publickey auth,
 * env requests for RD_JOB_EXECID, TCP keepalive-style SSH keepalives so a dead peer
 * is noticed in ~2 s instead of never).
 *
 *   {"id":1,"op":"exec","host":"198.18.0.100","port":22,"command":"...","env":{..},"timeoutMs":30000}
 *   {"id":2,"op":"scp","host":..,"port":..,"path":"/tmp/..","content":"..."}        scp -t sink upload
 *   {"id":3,"op":"http","url":"http://..","method":"GET","token":"..","timeoutMs":2000}
 * answers {"id":1,"code":0,"stdout":"..","stderr":"..","error":null,"t0":ms,"t1":ms}
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Client } from 'ssh2';

interface Request {
  id: number;
  op: 'exec' | 'scp' | 'http';
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
  body?: string;
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
      headers: r.token ? { authorization: `Bearer ${r.token}` } : {},
      ...(r.body !== undefined ? { body: r.body } : {}),
      signal: AbortSignal.timeout(r.timeoutMs ?? 2000),
    });
    return { id: r.id, status: res.status, body: await res.text() };
  } catch (err) {
    return { id: r.id, status: 0, error: (err as Error).message };
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const r = JSON.parse(line) as Request;
  const p = r.op === 'exec' ? exec(r) : r.op === 'scp' ? scp(r) : http(r);
  void p.then(write, (err: Error) => write({ id: r.id, error: err.message }));
});
process.stdin.on('end', () => process.exit(0));
write({ id: 0, ready: true });
