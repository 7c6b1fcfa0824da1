import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  freePorts,
  makeClusterFixture,
  startClusterGateway,
  startEtcdCluster,
  waitForRole,
  type ClusterFixture,
  type ClusterGateway,
  type ClusterNodeSpec,
  type EtcdCluster,
} from '../helpers/etcdCluster.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcpRelay.js';
import { sleep } from '../helpers/proc.js';
import { until } from '../helpers/until.js';

/**
 * etcd leadership against a real 3-member etcd cluster on loopback and two real
 * `execgate serve --cluster` processes, each reaching etcd only through its own TCP
 * relay (plus a dead endpoint listed first, so endpoint failover is always exercised).
 */

const TTL = 2; // etcd grants at least 2 s with --election-timeout 1000
const MARGIN = 0.5;
const cgroupsUsable = (() => {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').includes(' - cgroup2 ');
  } catch {
    return false;
  }
})();

let etcd: EtcdCluster;
let deadEndpoint: string;
const cleanups: Array<() => Promise<void> | void> = [];
let seq = 0;

beforeAll(async () => {
  etcd = await startEtcdCluster(3);
  deadEndpoint = `https://127.0.0.1:${(await freePorts(1))[0]}`;
}, 60_000);

afterAll(async () => {
  await etcd?.stop();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch {
      // keep tearing down
    }
  }
});

interface Pair {
  fixture: ClusterFixture;
  nodes: ClusterNodeSpec[];
  relays: Record<string, TcpRelay>;
  gws: Record<string, ClusterGateway>;
  start(name: string, waitListening?: boolean): Promise<ClusterGateway>;
}

/** Two nodes, gw1 and gw2, with their own relays (relay i -> etcd member i). */
async function makePair(): Promise<Pair> {
  const fixture = makeClusterFixture(`etcdtest${process.pid}x${++seq}`);
  cleanups.push(() => rmSync(fixture.dir, { recursive: true, force: true }));
  const ports = await freePorts(4);
  const nodes: ClusterNodeSpec[] = [
    { name: 'gw1', address: '127.0.0.11', sshPort: ports[0]!, httpPort: ports[1]!, priority: 150 },
    { name: 'gw2', address: '127.0.0.12', sshPort: ports[2]!, httpPort: ports[3]!, priority: 100 },
  ];
  const relays: Record<string, TcpRelay> = {};
  for (const [i, n] of nodes.entries()) {
    const member = etcd.members[i]!;
    relays[n.name] = await startTcpRelay('127.0.0.1', member.clientPort);
    const relay = relays[n.name]!;
    cleanups.push(() => relay.close());
  }
  const gws: Record<string, ClusterGateway> = {};
  const pair: Pair = {
    fixture,
    nodes,
    relays,
    gws,
    async start(name, waitListening = true) {
      const gw = await startClusterGateway(fixture, nodes, name, { ...etcd.connection, endpoints: [deadEndpoint, relays[name]!.url], ttlSeconds: TTL, marginSeconds: MARGIN }, { waitListening });
      gws[name] = gw;
      cleanups.push(async () => {
        try {
          gw.proc.kill('SIGCONT');
        } catch {
          // gone
        }
        await gw.stop('SIGKILL');
      });
      return gw;
    },
  };
  return pair;
}

const tokenOf = async (gw: ClusterGateway) => {
  const r = await gw.ssh('echo "$EXECGATE_FENCING_TOKEN"');
  expect(r.code, r.stderr).toBe(0);
  return BigInt(r.stdout.toString().trim());
};

/** Runs `true` on gw until it is admitted; returns how long that took. */
async function untilAdmitted(gw: ClusterGateway, timeoutMs = 15_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    const r = await gw.ssh('true');
    if (r.code === 0) return Date.now() - start;
    expect(r.code, r.stderr).toBe(75);
    if (Date.now() - start > timeoutMs) throw new Error(`${gw.name} never admitted a command: ${r.stderr}`);
    await sleep(50);
  }
}

const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
};

const ms = (iso: unknown) => Date.parse(String(iso));

describe('etcd leadership (real 3-member etcd, two gateways, relays)', () => {
  it('SIGKILL of the leader: the other leads after the lease expires, with a larger token', async () => {
    const p = await makePair();
    const gw1 = await p.start('gw1');
    await waitForRole(gw1, 'leader');
    const gw2 = await p.start('gw2');
    await waitForRole(gw2, 'standby');
    const t1 = await tokenOf(gw1);
    const refused = await gw2.ssh('touch /nonexistent-should-not-run');
    expect(refused.code).toBe(75);
    expect(refused.stderr).toContain(`execgate: gw2 is standby; leader is gw1 (token ${t1}); not running`);

    const killedAt = Date.now();
    gw1.proc.kill('SIGKILL');
    await waitForRole(gw2, 'leader', 10_000);
    const failoverMs = Date.now() - killedAt;
    const t2 = await tokenOf(gw2);
    expect(t2 > t1).toBe(true);
    console.log(`[etcd] failover after SIGKILL of the leader: ${failoverMs} ms (TTL ${TTL} s), token ${t1} -> ${t2}`);
    expect(failoverMs).toBeGreaterThanOrEqual(1000); // it had to wait for the lease, not less
  });

  it("cutting only the leader's relay: it kills its command before its deadline; the new leader starts after that", async () => {
    const p = await makePair();
    const gw1 = await p.start('gw1');
    await waitForRole(gw1, 'leader');
    const gw2 = await p.start('gw2');
    await waitForRole(gw2, 'standby');
    const pidFile = join(p.fixture.dir, 'victim.pid');
    const victim = gw1.ssh(`echo $$ > ${pidFile}; exec sleep 60`);
    expect(await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 10_000)).not.toBeNull();
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    cleanups.push(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already dead (the expected case)
      }
    });

    const cutAt = Date.now();
    await p.relays.gw1!.cut();
    // gw2 keeps trying; its first admitted command is the new leader's first command.
    const takeoverMs = await untilAdmitted(gw2, 20_000);
    const result = await victim;
    expect(result.code).toBe(137); // SIGKILL, no grace
    expect(alive(pid)).toBe(false);
    const killed = gw1.audit().find((r) => r.result === 'killed');
    expect(killed?.killReason).toBe('fenced: lease lost');
    const firstNew = gw2.audit().find((r) => r.result === 'completed')!;
    const oldEnd = ms(killed!.end);
    const newStart = ms(firstNew.start);
    expect(oldEnd).toBeLessThan(newStart);
    expect(BigInt(String(firstNew.token)) > BigInt(String(killed!.token))).toBe(true);
    const fenced = gw1
      .output()
      .split('\n')
      .find((l) => l.includes('"etcd leadership: fenced"'));
    expect(fenced).toBeDefined();
    const fencedAt = ms((JSON.parse(fenced!) as { time: string }).time);
    const gw2LeaderLine = gw2
      .output()
      .split('\n')
      .find((l) => l.includes('"etcd leadership state"') && l.includes('"role":"leader"'))!;
    const gw2LeaderAt = ms((JSON.parse(gw2LeaderLine) as { time: string }).time);
    expect(fencedAt).toBeLessThan(gw2LeaderAt);
    console.log(`[etcd] relay cut: gw1 fenced ${fencedAt - cutAt} ms after the cut, gw2 leader ${gw2LeaderAt - cutAt} ms after the cut: fence ${gw2LeaderAt - fencedAt} ms ahead of the takeover`);
    console.log(
      `[etcd] relay cut: old command ended ${oldEnd - cutAt} ms after the cut (deadline <= ${(TTL - MARGIN) * 1000} ms after the last ack), ` +
        `new leader's first command started ${newStart - cutAt} ms after the cut; gap ${newStart - oldEnd} ms; takeover seen by client in ${takeoverMs} ms`,
    );
    // the fenced node refuses everything while cut off
    const r = await gw1.ssh('true');
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/gw1 is (fenced|standby)/);
    // reconnected: it follows gw2 and never leads with an old token
    const restoredAt = Date.now();
    await p.relays.gw1!.restore();
    await waitForRole(gw1, 'standby', 10_000);
    console.log(`[etcd] relay restored: gw1 standby again after ${Date.now() - restoredAt} ms; test so far ${Date.now() - cutAt} ms after the cut`);
    expect(gw1.lastState()!.leader).toBe('gw2');
  });

  it('SIGSTOP of the leader past the TTL, then SIGCONT: it runs nothing more and its command (and a setsid child) is dead', async () => {
    const p = await makePair();
    const gw1 = await p.start('gw1');
    await waitForRole(gw1, 'leader');
    const gw2 = await p.start('gw2');
    await waitForRole(gw2, 'standby');
    const mainPid = join(p.fixture.dir, 'main.pid');
    const escapee = join(p.fixture.dir, 'escapee.pid');
    // The setsid child leaves the process group and the pipes: only its cgroup holds it.
    const victim = gw1.ssh(`setsid sh -c 'echo $$ > ${escapee}; exec sleep 60' </dev/null >/dev/null 2>&1 & echo $$ > ${mainPid}; exec sleep 60`);
    expect(await until(() => [mainPid, escapee].every((f) => existsSync(f) && readFileSync(f, 'utf8').trim() !== ''), 10_000)).not.toBeNull();
    const pids = [mainPid, escapee].map((f) => Number(readFileSync(f, 'utf8').trim()));
    cleanups.push(() => {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already dead (the expected case)
        }
      }
    });

    const stoppedAt = Date.now();
    gw1.proc.kill('SIGSTOP');
    await untilAdmitted(gw2, 20_000);
    const takeoverMs = Date.now() - stoppedAt;
    await sleep(Math.max(0, TTL * 1000 + 500 - (Date.now() - stoppedAt)));
    // A paused gateway cannot fence itself: its command still runs here (systemd's watchdog covers that in production).
    const contAt = Date.now();
    gw1.proc.kill('SIGCONT');
    const r = await gw1.ssh('echo should-not-run');
    expect(r.code).toBe(75);
    expect(r.stdout.toString()).not.toContain('should-not-run');
    const result = await victim;
    expect(result.code).toBe(137);
    expect(await until(() => !alive(pids[0]!), 5000)).not.toBeNull();
    const escapeeDead = await until(() => !alive(pids[1]!), 5000);
    const completedAfter = gw1.audit().filter((a) => a.result === 'completed' && ms(a.start) >= stoppedAt);
    expect(completedAfter).toHaveLength(0);
    console.log(
      `[etcd] SIGSTOP: gw2 took over ${takeoverMs} ms after the stop; after SIGCONT gw1 refused at once; ` +
        `setsid child ${escapeeDead === null ? 'SURVIVED' : `dead ${Date.now() - contAt} ms after SIGCONT`} (cgroup v2 ${cgroupsUsable ? 'mounted' : 'not mounted'})`,
    );
    if (cgroupsUsable) {
      expect(gw1.output()).toContain('commands run in their own cgroup v2');
      expect(escapeeDead).not.toBeNull();
    }
    expect(gw1.lastState()!.role).not.toBe('leader');
  });

  it('etcd unreachable at start: standby with a clear reason, then it recovers by itself', async () => {
    const p = await makePair();
    await p.relays.gw1!.cut();
    const gw1 = await p.start('gw1');
    await until(() => gw1.lastState()?.reason?.startsWith('etcd unreachable: ') ?? false, 10_000);
    const state = gw1.lastState()!;
    expect(state.role).toBe('standby');
    expect(state.reason).toMatch(/^etcd unreachable: /);
    const refused = await gw1.ssh('true');
    expect(refused.code).toBe(75);
    expect(refused.stderr).toContain('execgate: gw1 is standby');
    // /readyz says why, where the HTTP surface is built in
    let readyz: { reason?: string; detail?: string } | null;
    try {
      const res = await fetch(`http://${gw1.address}:${gw1.httpPort}/readyz`, { signal: AbortSignal.timeout(2000) });
      readyz = (await res.json()) as { reason?: string; detail?: string };
      expect(res.status).toBe(503);
    } catch {
      readyz = null;
    }
    if (readyz) expect(readyz.detail).toMatch(/etcd unreachable/);
    console.log(`[etcd] down at start: reason "${state.reason}"; /readyz ${readyz ? JSON.stringify(readyz) : 'not available'}`);
    const restoredAt = Date.now();
    await p.relays.gw1!.restore();
    await waitForRole(gw1, 'leader', 15_000);
    console.log(`[etcd] recovered by itself ${Date.now() - restoredAt} ms after etcd became reachable`);
    expect((await gw1.ssh('true')).code).toBe(0);
  });

  it('tokens strictly increase over 20 forced transitions; SIGTERM hands over in well under one TTL', { timeout: 300_000 }, async () => {
    const p = await makePair();
    await p.start('gw1');
    await waitForRole(p.gws.gw1!, 'leader');
    await p.start('gw2');
    await waitForRole(p.gws.gw2!, 'standby');
    const tokens: bigint[] = [];
    const handovers: number[] = [];
    const other = (n: string) => (n === 'gw1' ? 'gw2' : 'gw1');
    let leader = 'gw1';
    for (let i = 0; i < 20; i++) {
      const gw = p.gws[leader]!;
      const next = p.gws[other(leader)]!;
      await waitForRole(next, 'standby');
      tokens.push(await tokenOf(gw));
      if (i % 4 === 3) {
        // a partition instead of a clean stop: the leader fences itself, the other waits for the lease
        await p.relays[leader]!.cut();
        await waitForRole(next, 'leader', 15_000);
        await p.relays[leader]!.restore();
        await waitForRole(gw, 'standby', 15_000);
      } else {
        const t0 = Date.now();
        const stopping = gw.stop('SIGTERM');
        await waitForRole(next, 'leader', 15_000);
        handovers.push(Date.now() - t0);
        await stopping;
        expect(gw.proc.exitCode).toBe(0);
        await p.start(leader);
      }
      leader = other(leader);
    }
    tokens.push(await tokenOf(p.gws[leader]!));
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!, `token ${i}: ${tokens[i]} after ${tokens[i - 1]}`).toBe(true);
    const sorted = [...handovers].sort((a, b) => a - b);
    console.log(
      `[etcd] tokens over ${tokens.length - 1} transitions: ${tokens.join(' < ')}\n` +
        `[etcd] SIGTERM handover (SIGTERM -> the other logs leader), n=${sorted.length}: min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms (TTL ${TTL * 1000} ms)`,
    );
    expect(sorted[Math.floor(sorted.length / 2)]!).toBeLessThan(TTL * 1000);
  });
});

describe('the handover announce against real etcd', () => {
  it('putIfCreated rewrites the election value only for the key created at that revision, keeping lease and token', async () => {
    const client = etcd.client({ endpoints: [etcd.members[0]!.clientUrl], requestTimeoutMs: 2000 });
    const prefix = `/announce-test-${process.pid}/leader/`;
    const lease = await client.grantLease(5);
    const put = await client.putIfAbsent(`${prefix}gw1`, 'gw1', lease.id);
    expect(put.created).toBe(true);
    const created = put.kv!.createRevision;
    expect(await client.putIfCreated(`${prefix}gw1`, 'gw1 handover', lease.id, created + 1n)).toBe(false);
    expect(await client.putIfCreated(`${prefix}gw1`, 'gw1 handover', lease.id, created)).toBe(true);
    const { kvs } = await client.rangePrefix(prefix);
    expect(kvs).toHaveLength(1);
    expect(kvs[0]).toMatchObject({ value: 'gw1 handover', createRevision: created, lease: lease.id });
    await client.revokeLease(lease.id);
    expect(await client.putIfCreated(`${prefix}gw1`, 'gw1', lease.id, created)).toBe(false); // gone with its lease
  });
});
