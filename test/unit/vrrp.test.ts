import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { vrrpDecision, vrrpToken, nextEpoch, epochOfToken, VrrpLeadership, type VrrpInputs, type VrrpProbes } from '../../src/leadership/vrrp.js';
import { parseCluster } from '../../src/config/clusterLoad.js';
import type { Logger } from '../../src/log.js';

const ok: VrrpInputs = { started: true, released: false, vipLocal: true, keepalivedPid: 42, reported: { state: 'MASTER', pid: 42 }, inferMaster: false };

describe('vrrpDecision', () => {
  it('leads only with VIP + live keepalived + MASTER from that keepalived', () => {
    expect(vrrpDecision(ok).leader).toBe(true);
    expect(vrrpDecision({ ...ok, vipLocal: false })).toMatchObject({ leader: false, reason: expect.stringMatching(/VIP/) });
    expect(vrrpDecision({ ...ok, keepalivedPid: null })).toMatchObject({ leader: false, reason: 'keepalived is not running' });
    expect(vrrpDecision({ ...ok, keepalivedPid: 43 })).toMatchObject({ leader: false, reason: expect.stringMatching(/restarted/) });
    expect(vrrpDecision({ ...ok, reported: { state: 'BACKUP', pid: 42 } })).toMatchObject({ leader: false, reason: 'keepalived reports BACKUP' });
    expect(vrrpDecision({ ...ok, released: true }).leader).toBe(false);
    expect(vrrpDecision({ ...ok, started: false }).leader).toBe(false);
    expect(vrrpDecision({ ...ok, reported: null }).leader).toBe(false);
    expect(vrrpDecision({ ...ok, reported: null, inferMaster: true }).leader).toBe(true);
    expect(vrrpDecision({ ...ok, reported: null, inferMaster: true, vipLocal: false }).leader).toBe(false);
  });
  it('tokens grow past the clock, persisted epochs and peers', () => {
    expect(nextEpoch(0n, 0n, 1000)).toBe(1001n);
    expect(nextEpoch(5000n, 0n, 1000)).toBe(5001n);
    expect(nextEpoch(5000n, 9000n, 1000)).toBe(9001n);
    const t = vrrpToken(9001n, 3);
    expect(t).toBe(9001n * 16n + 3n);
    expect(epochOfToken(t)).toBe(9001n);
  });
});

/** A vrrp-mode cluster file with its state and FIFO in `dir`. */
function vrrpCluster(dir: string, vip: string, peerPollIntervalMs: number, nodes: Array<{ name: string; address: string; priority: number; httpPort?: number }>) {
  return parseCluster(
    {
      cluster: 'c',
      vip: { address: vip },
      leadership: { source: 'vrrp' },
      stateDir: dir,
      notifyFifo: join(dir, 'fifo'),
      vrrp: { peerPollIntervalMs },
      gateway: { hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: 'a' } },
      nodes,
    },
    'test',
  );
}

describe('VrrpLeadership with fake probes', () => {
  let dir = '';
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('flips roles at the moment current() is called, tokens increase', async () => {
    dir = mkdtempSync(join(tmpdir(), 'eg-vrrp-'));
    const cluster = vrrpCluster(dir, '198.18.0.100', 0, [
      { name: 'gw1', address: '198.18.0.11', priority: 150 },
      { name: 'gw2', address: '198.18.0.12', priority: 100 },
    ]);
    const host = { vip: false, pid: 42 as number | null };
    const probes: VrrpProbes = { vipLocal: () => host.vip, keepalivedPid: () => host.pid, processAgeMs: () => 0 };
    const log = pino({ level: 'silent' }) as unknown as Logger;
    const v = new VrrpLeadership({ node: 'gw1', cluster, log, probes, readFifo: false });
    await v.start();
    expect(v.current().role).toBe('standby');
    v.notify({ kind: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 150 });
    expect(v.current().role).toBe('standby'); // no VIP yet
    host.vip = true;
    const first = v.current();
    expect(first.role).toBe('leader');
    expect(first.token! % 16n).toBe(0n);
    host.pid = null; // keepalived crashed; the VIP stays (orphan)
    expect(v.current()).toMatchObject({ role: 'standby', reason: 'keepalived is not running' });
    host.pid = 77; // a new keepalived: the old MASTER report does not count
    expect(v.current().role).toBe('standby');
    v.notify({ kind: 'INSTANCE', name: 'VI_9', state: 'MASTER', priority: 150 }); // another instance
    expect(v.current().role).toBe('standby');
    v.notify({ kind: 'INSTANCE', name: 'VI_1', state: 'BACKUP', priority: 150 });
    expect(v.current()).toMatchObject({ role: 'standby', leader: 'gw2' }); // two nodes: BACKUP means gw2 leads
    v.notify({ kind: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 150 });
    const second = v.current();
    expect(second.role).toBe('leader');
    expect(second.token!).toBeGreaterThan(first.token!);
    await v.release();
    expect(v.current().role).toBe('standby');
    await v.rejoin();
    expect(v.current().role).toBe('leader');
    await v.stop();
    // a restart continues from the persisted epoch even if the clock went back
    const again = new VrrpLeadership({ node: 'gw1', cluster, log, probes, readFifo: false });
    await again.start();
    again.notify({ kind: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 150 });
    expect(again.current().token!).toBeGreaterThan(v.current().token ?? second.token!);
    await again.stop();
  });
});

describe("vrrp's peer poll", () => {
  let dir = '';
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("sends the cluster's token to a peer's GET /leader and learns the leader from it", async () => {
    dir = mkdtempSync(join(tmpdir(), 'eg-vrrp-poll-'));
    const seen: Array<{ url: string | undefined; headers: IncomingHttpHeaders }> = [];
    const peer = createServer((req, res) => {
      seen.push({ url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node: 'gw2', token: '160', since: new Date().toISOString() }));
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    const port = (peer.address() as AddressInfo).port;
    const cluster = vrrpCluster(dir, '127.0.0.100', 100, [
      { name: 'gw1', address: '127.0.0.11', priority: 150 },
      { name: 'gw2', address: '127.0.0.1', priority: 100, httpPort: port },
    ]);
    const probes: VrrpProbes = { vipLocal: () => false, keepalivedPid: () => 42, processAgeMs: () => 0 };
    const log = pino({ level: 'silent' }) as unknown as Logger;
    const v = new VrrpLeadership({ node: 'gw1', cluster, log, probes, readFifo: false, peerToken: 'the-cluster-token-0123456789' });
    try {
      await v.start();
      const deadline = Date.now() + 5000;
      while (v.current().leader !== 'gw2' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(v.current()).toMatchObject({ role: 'standby', leader: 'gw2', token: 160n });
      expect(seen.length).toBeGreaterThan(0);
      expect(seen[0]!.url).toBe('/leader');
      expect(seen[0]!.headers.authorization).toBe('Bearer the-cluster-token-0123456789');
    } finally {
      await v.stop();
      await new Promise((r) => peer.close(r));
    }
  });
});
