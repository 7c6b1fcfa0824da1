import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdClaimStore } from '../../src/runonce/etcdClaimStore.js';
import { pino } from 'pino';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcdCluster.js';
import { jsch, ssh } from '../helpers/clients.js';
import { connectClient, execOn } from '../helpers/ssh2Client.js';
import { until } from '../helpers/until.js';

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('run-once: dispatch to every gateway, execute exactly once', () => {
  let etcd: EtcdCluster;
  const gws: TestGateway[] = [];
  let skipFastGw: TestGateway;
  let prefix: string;

  beforeAll(async () => {
    etcd = await startEtcdCluster(1);
    prefix = `/execgate-runonce-test-${Date.now()}`;
    // Liveness 5 s (the default): a burst of 100 starts per gateway blocks each event loop for about
    // 1-2 s on a 2-core machine (fork from node takes ~9 ms), which a 2 s lease did not survive.
    const runOnce = { enabled: true, etcd: { ...etcd.connection, prefix }, livenessTtlSeconds: 5, pollMs: 100 };
    for (const node of ['gw1', 'gw2', 'gw3']) gws.push(await startTestGateway({ node, runOnce }));
    skipFastGw = await startTestGateway({ node: 'gw4', runOnce: { ...runOnce, skipFast: true } });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([...gws, skipFastGw].map((g) => g?.stop()));
    await etcd?.stop();
  });

  const step = (gw: TestGateway, name: string, script: string, execid: string, withEnv: boolean) =>
    jsch([
      '--host',
      '127.0.0.1',
      '--port',
      String(gw.port),
      '--user',
      'root',
      '--key',
      gw.keys.rsaPem,
      '--node',
      name,
      '--mode',
      'step',
      '--script',
      script,
      '--execid',
      execid,
      ...(withEnv ? ['--env', `RD_JOB_EXECID=${execid}`, '--env', `RD_NODE_NAME=${name}`] : []),
    ]);

  for (const withEnv of [true, false]) {
    it(`a JSch script step sent to two gateways runs once and both report success (${withEnv ? 'with' : 'without'} env passing)`, async () => {
      const execid = withEnv ? '7001' : '7002';
      const ledger = join(gws[0]!.dir, `ledger-${execid}`);
      const script = join(gws[0]!.dir, `step-${execid}.sh`);
      writeFileSync(script, `#!/bin/sh\necho "$EXECGATE_NODE $EXECGATE_FENCING_TOKEN" >> ${ledger}\nsleep 0.5\necho work done\n`);
      const [a, b] = await Promise.all([step(gws[0]!, 'gw1', script, execid, withEnv), step(gws[1]!, 'gw2', script, execid, withEnv)]);
      expect(a.code).toBe(0);
      expect(b.code).toBe(0);
      expect(lines(ledger)).toHaveLength(1);
      const [winner, token] = lines(ledger)[0]!.split(' ');
      const results = [a, b].map((r) => r.ops.find((o) => o.op === 'done')?.exit);
      expect(results).toEqual([0, 0]);
      const execs = [a, b].map((r) => r.ops.filter((o) => o.op === 'exec')[1]!);
      const loser = execs.find((e) => e.stdout!.startsWith('execgate:'))!;
      expect(loser.stdout).toBe(`execgate: step ran on ${winner} (token ${token}), exit 0\n`);
      expect(execs.find((e) => e !== loser)!.stdout).toBe('work done\n');
    });
  }

  it('200+ concurrent claims for 50 execution ids across three gateways: each step runs exactly once', async () => {
    const ledger = join(gws[0]!.dir, 'ledger-burst');
    const clients = await Promise.all(gws.map((g) => Promise.all(Array.from({ length: 20 }, () => connectClient(g.port, g.keys.ed25519)))));
    try {
      const jobs: Array<Promise<{ code: number | null }>> = [];
      for (let id = 8000; id < 8050; id++) {
        for (const [stepNo, command] of [`echo "${id} A $EXECGATE_NODE" >> ${ledger}`, `echo "${id} B $EXECGATE_NODE" >> ${ledger}`].entries()) {
          gws.forEach((_, g) => {
            const client = clients[g]![((id - 8000) * 2 + stepNo) % 20]!; // 5 channels per connection (limit 10)
            jobs.push(execOn(client, command, { env: { RD_JOB_EXECID: String(id) } }));
          });
        }
      }
      const results = await Promise.all(jobs);
      expect(jobs.length).toBe(300);
      expect(results.filter((r) => r.code !== 0)).toEqual([]);
    } finally {
      clients.flat().forEach((c) => c.end());
    }
    const ran = lines(ledger).map((l) => l.split(' ').slice(0, 2).join(' '));
    expect(ran).toHaveLength(100);
    expect(new Set(ran).size).toBe(100);
  }, 120_000);

  it("mirror mode returns the winner's non-zero status; skipFast returns 0 at once", async () => {
    const ledger = join(gws[0]!.dir, 'ledger-mirror');
    const cmd = `echo "$EXECGATE_NODE" >> ${ledger}; sleep 1; exit 3`;
    const env = { ...process.env, RD_JOB_EXECID: '9100' };
    const extra = ['-o', 'SendEnv=RD_JOB_EXECID'];
    const [a, b, fast] = await Promise.all([
      ssh(gws[0]!.port, gws[0]!.keys.ed25519, cmd, { env, extra }),
      ssh(gws[1]!.port, gws[1]!.keys.ed25519, cmd, { env, extra }),
      (async () => {
        await until(() => lines(ledger).length > 0, 5000);
        const t0 = Date.now();
        const r = await ssh(skipFastGw.port, skipFastGw.keys.ed25519, cmd, { env, extra });
        return { ...r, ms: Date.now() - t0 };
      })(),
    ]);
    expect([a.code, b.code]).toEqual([3, 3]);
    expect(lines(ledger)).toHaveLength(1);
    expect(fast.code).toBe(0);
    expect(fast.stdout.toString()).toMatch(/^execgate: step runs on gw[12] \(token \d+\); runOnce.skipFast: not waiting\n$/);
    expect(fast.ms).toBeLessThan(1000); // did not wait for the 1 s step
  });

  it('two identical steps in one execution both run', async () => {
    const ledger = join(gws[0]!.dir, 'ledger-twice');
    const cmd = `echo "$EXECGATE_NODE" >> ${ledger}`;
    const env = { ...process.env, RD_JOB_EXECID: '9200' };
    const extra = ['-o', 'SendEnv=RD_JOB_EXECID'];
    for (let stepNo = 0; stepNo < 2; stepNo++) {
      const rs = await Promise.all(gws.slice(0, 2).map((g) => ssh(g.port, g.keys.ed25519, cmd, { env, extra })));
      expect(rs.map((r) => r.code)).toEqual([0, 0]);
    }
    expect(lines(ledger)).toHaveLength(2);
  });

  it('no execution id: exit 75, never run unguarded', async () => {
    const r = await ssh(gws[0]!.port, gws[0]!.keys.ed25519, 'echo should-not-run');
    expect(r.code).toBe(75);
    expect(r.stderr).toContain('run-once needs the Rundeck execution id');
    expect(r.stdout.toString()).toBe('');
  });

  it("an unconfirmed claim is abandoned in etcd only while it is still this node's", async () => {
    const store = new EtcdClaimStore(etcd.client(), 600, 5, pino({ level: 'silent' }));
    try {
      const mine = { node: 'gw1', start: new Date().toISOString() };
      const key = `${prefix}/abandon-test`;
      expect((await store.claim(key, mine)).won).toBe(true);
      await store.abandon(key, { ...mine, node: 'gw2' }, { ...mine, exit: 75, abandoned: true }); // not ours: no change
      expect((await store.read(key))?.record).toEqual(mine);
      await store.abandon(key, mine, { ...mine, exit: 75, abandoned: true });
      expect(await store.read(key)).toMatchObject({ record: { node: 'gw1', exit: 75, abandoned: true }, winnerAlive: false });
    } finally {
      await store.close();
    }
  });

  it('if the winner dies mid-step nobody runs it again, and a waiting loser exits 75 naming the dead winner', async () => {
    const victim = gws[2]!;
    const pidFile = join(victim.dir, 'winner.pid');
    const ledger = join(victim.dir, 'ledger-dead');
    const cmd = `echo $$ > ${pidFile}; echo "$EXECGATE_NODE" >> ${ledger}; sleep 30`;
    const env = { ...process.env, RD_JOB_EXECID: '9300' };
    const extra = ['-o', 'SendEnv=RD_JOB_EXECID'];
    const winner = ssh(victim.port, victim.keys.ed25519, cmd, { env, extra });
    await until(() => lines(ledger).length === 1, 10_000);
    const loser = ssh(gws[0]!.port, gws[0]!.keys.ed25519, cmd, { env, extra });
    await new Promise((r) => setTimeout(r, 500));
    victim.proc.kill('SIGKILL'); // the winner's gateway dies; its liveness lease expires
    const l = await loser;
    await winner;
    try {
      process.kill(-Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); // the orphaned step, by its pid
    } catch {
      // already gone
    }
    expect(l.code).toBe(75);
    expect(l.stdout.toString()).toMatch(/^execgate: step was claimed by gw3 \(token \d+\), which died before it finished; outcome unknown/);
    expect(lines(ledger)).toHaveLength(1);
  }, 60_000);
});
