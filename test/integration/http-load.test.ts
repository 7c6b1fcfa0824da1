import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sshArgs } from '../helpers/clients.js';
import { sleep } from '../helpers/proc.js';

const TOTAL = 200 * 1024 * 1024;

/** One GET on a fresh connection (as keepalived's and HAProxy's checks do); ms and status. */
function probe(port: number, path: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode! }));
    });
    req.on('error', reject);
    req.end();
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

describe('/healthz while another session streams 200 MB', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('keeps answering 200 (median latency over 50 calls is printed, not asserted)', async () => {
    const idle: number[] = [];
    for (let i = 0; i < 10; i++) idle.push((await probe(gw.httpPort!, '/healthz')).ms);

    // The client counts bytes instead of buffering them.
    const client = spawn('ssh', [...sshArgs(gw.port, gw.keys.ed25519), 'root@127.0.0.1', `head -c ${TOTAL} /dev/zero`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let received = 0;
    client.stdout.on('data', (d: Buffer) => (received += d.length));
    const exited = new Promise<number | null>((r) => client.once('close', (code) => r(code)));
    let finished = false;
    void exited.then(() => (finished = true));
    const t0 = Date.now();
    while (received === 0 && Date.now() - t0 < 15_000) await sleep(5);
    expect(received).toBeGreaterThan(0);

    const during: number[] = [];
    const statuses: number[] = [];
    let whileStreaming = 0;
    for (let i = 0; i < 50; i++) {
      const r = await probe(gw.httpPort!, '/healthz');
      statuses.push(r.status);
      during.push(r.ms);
      if (!finished) whileStreaming++;
      await sleep(5);
    }
    const code = await exited;
    const seconds = (Date.now() - t0) / 1000;
    expect(code).toBe(0);
    expect(received).toBe(TOTAL);
    expect(statuses.every((s) => s === 200)).toBe(true);
    console.log(
      `/healthz median ${median(during).toFixed(2)} ms (max ${Math.max(...during).toFixed(1)} ms) over 50 calls while streaming 200 MB ` +
        `(${whileStreaming}/50 calls answered before the stream ended; stream ${seconds.toFixed(1)} s, ${(TOTAL / 1024 / 1024 / seconds).toFixed(0)} MB/s); ` +
        `idle median ${median(idle).toFixed(2)} ms`,
    );
  });
});
