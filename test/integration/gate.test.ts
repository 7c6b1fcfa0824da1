import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, makeClusterFixture, startClusterGateway, startEtcdCluster, waitForRole, type ClusterFixture, type ClusterGateway, type EtcdCluster } from '../helpers/etcdCluster.js';
import { run, sshArgs } from '../helpers/clients.js';

/** A standby (etcd mode) refuses every way of starting something, and nothing starts. */
describe('the leader gate on a standby', () => {
  let etcd: EtcdCluster;
  let fixture: ClusterFixture;
  const gws: ClusterGateway[] = [];
  let standby: ClusterGateway;
  let leader: ClusterGateway;

  beforeAll(async () => {
    etcd = await startEtcdCluster(1);
    fixture = makeClusterFixture(`gatetest${process.pid}`);
    const ports = await freePorts(4);
    const nodes = [
      { name: 'gw1', address: '127.0.0.21', sshPort: ports[0]!, httpPort: ports[1]!, priority: 150 },
      { name: 'gw2', address: '127.0.0.22', sshPort: ports[2]!, httpPort: ports[3]!, priority: 100 },
    ];
    const settings = { ...etcd.connection, ttlSeconds: 2, marginSeconds: 0.5 };
    gws.push(await startClusterGateway(fixture, nodes, 'gw1', settings));
    await waitForRole(gws[0]!, 'leader');
    gws.push(await startClusterGateway(fixture, nodes, 'gw2', settings));
    await waitForRole(gws[1]!, 'standby');
    [leader, standby] = gws as [ClusterGateway, ClusterGateway];
  }, 60_000);
  afterAll(async () => {
    for (const g of gws) await g.stop();
    await etcd?.stop();
    if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
  });

  const base = () => sshArgs(standby.sshPort, fixture.keys.ed25519);
  const target = () => `root@${standby.address}`;
  const refusal = /^execgate: gw2 is standby; leader is gw1 \(token \d+\); not running$/m;

  it('refuses exec with exit 75 and the message; nothing starts', async () => {
    const marker = join(fixture.dir, 'exec-marker');
    const r = await run('ssh', [...base(), target(), `touch ${marker}`]);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(refusal);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a shell', async () => {
    const marker = join(fixture.dir, 'shell-marker');
    const r = await run('ssh', [...base(), '-T', target()], { input: `touch ${marker}\n` });
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(refusal);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses sftp and scp (both modes)', async () => {
    const local = join(fixture.dir, 'payload.txt');
    writeFileSync(local, 'x');
    const scpBase = base().map((a) => (a === '-p' ? '-P' : a));
    for (const mode of [[], ['-O']]) {
      const dest = join(fixture.dir, `scp-dest-${mode.length}`);
      const r = await run('scp', [...mode, ...scpBase, local, `${target()}:${dest}`]);
      expect(r.code).not.toBe(0);
      expect(existsSync(dest)).toBe(false);
    }
    const batch = join(fixture.dir, 'batch');
    const sftpDest = join(fixture.dir, 'sftp-dest');
    writeFileSync(batch, `put ${local} ${sftpDest}\n`);
    const s = await run('sftp', [...scpBase, '-b', batch, target()]);
    expect(s.code).not.toBe(0);
    expect(existsSync(sftpDest)).toBe(false);
    const refused = standby.audit().filter((a) => a.result === 'refused:standby');
    expect(refused.map((a) => a.command)).toEqual(expect.arrayContaining(['(sftp)']));
    expect(refused.some((a) => String(a.command).startsWith('scp '))).toBe(true);
  });

  it('the leader runs the same things', async () => {
    const r = await run('ssh', [...sshArgs(leader.sshPort, fixture.keys.ed25519), `root@${leader.address}`, 'echo leader-ran']);
    expect(r.stdout.toString()).toBe('leader-ran\n');
  });
});
