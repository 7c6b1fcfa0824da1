import { describe, it, expect, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/until.js';
import { SystemdNotifier } from '../../src/systemd/notify.js';

/** A stand-in for systemd's notify socket: one AF_UNIX datagram socket; prints each datagram as a JSON line. */
const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("listening"), flush=True)
while True:
    data = s.recv(65536)  # passed fds (systemd-notify's BARRIER=1) are dropped, which releases the barrier
    print(json.dumps(data.decode()), flush=True)
`;

function startReceiver(path: string): Promise<{ proc: ChildProcess; messages: string[] }> {
  return new Promise((resolve, reject) => {
    const proc = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const messages: string[] = [];
    let buf = '';
    proc.once('error', reject);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as string;
        buf = buf.slice(nl + 1);
        if (line === 'listening') resolve({ proc, messages });
        else messages.push(line);
      }
    });
  });
}

describe('sd_notify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-notify-'));
  const cleanups: Array<() => unknown> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the gateway sends READY=1, WATCHDOG=1 pings from its event loop, and STOPPING=1', async () => {
    const socketPath = join(dir, 'notify.sock');
    const receiver = await startReceiver(socketPath);
    cleanups.push(() => receiver.proc.kill('SIGKILL'));
    const saved = { ...process.env };
    process.env.NOTIFY_SOCKET = socketPath;
    process.env.WATCHDOG_USEC = '400000'; // pings every 200 ms
    delete process.env.WATCHDOG_PID;
    let gw: TestGateway;
    try {
      gw = await startTestGateway({ node: 'gw-notify' });
    } finally {
      process.env = saved;
    }
    cleanups.push(() => gw.stop());
    const { messages } = receiver;
    expect(await until(() => messages.some((m) => m.split('\n').includes('READY=1')), 20_000), 'READY=1').not.toBeNull();
    expect(await until(() => messages.filter((m) => m === 'WATCHDOG=1').length >= 3, 20_000), 'three WATCHDOG=1 pings').not.toBeNull();

    // A stalled event loop sends nothing (at most one ping already on its way).
    gw.proc.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 300));
    const before = messages.filter((m) => m === 'WATCHDOG=1').length;
    await new Promise((r) => setTimeout(r, 1500));
    const during = messages.filter((m) => m === 'WATCHDOG=1').length - before;
    gw.proc.kill('SIGCONT');
    expect(during).toBeLessThanOrEqual(1);
    expect(await until(() => messages.filter((m) => m === 'WATCHDOG=1').length >= before + during + 2, 20_000), 'pings after SIGCONT').not.toBeNull();

    await gw.stop();
    expect(await until(() => messages.some((m) => m.split('\n').includes('STOPPING=1')), 20_000), 'STOPPING=1').not.toBeNull();
    expect(gw.output()).toMatch(/"watchdogMs":400,.*"msg":"notifying systemd"/);
  });

  it('the notifier stays silent without NOTIFY_SOCKET and ignores a watchdog meant for another PID', async () => {
    const none = new SystemdNotifier({ env: {} });
    expect(none.enabled).toBe(false);
    expect(await none.send('READY=1')).toBe(false);
    const other = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '2000000', WATCHDOG_PID: String(process.pid + 1) } });
    expect(other.watchdogMs).toBeNull();
    const mine = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '2000000', WATCHDOG_PID: String(process.pid) } });
    expect(mine.watchdogMs).toBe(2000);
    const errors: string[] = [];
    const broken = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent' }, command: '/nonexistent/systemd-notify', onError: (m) => errors.push(m) });
    expect(await broken.send('READY=1')).toBe(false);
    expect(errors[0]).toMatch(/cannot run \/nonexistent\/systemd-notify/);
  });
});
