import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect } from 'node:net';
import { startTestGateway, makeClientKeys, type TestGateway } from '../helpers/gateway.js';
import { ssh, run, sshArgs } from '../helpers/clients.js';
import { connectClient, execOn } from '../helpers/ssh2Client.js';
import { sleep } from '../helpers/proc.js';
import { until } from '../helpers/until.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Each limit: hit it, check the message, check that others are unaffected. */
describe('limits', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      runAs: { accounts: { alice: 'root', bob: 'root', carol: 'root' } },
      limits: {
        maxConnections: 8,
        maxConnectionsPerSource: 3,
        maxCommands: 4,
        maxCommandsPerUser: 2,
        maxChannelsPerConnection: 2,
        maxCommandBytes: 100,
        maxEnvVars: 2,
        loginGraceSeconds: 1,
        idleTimeoutSeconds: 1,
        authFailures: { threshold: 2, windowSeconds: 60, baseBlockSeconds: 30, maxBlockSeconds: 60, perSourceThreshold: 1000 },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  const count = (text: string, needle: string) => text.split(needle).length - 1;
  const running = () => count(gw.output(), '"msg":"command started"') - count(gw.output(), '"msg":"command finished"');
  const sshFrom = (bind: string, command: string, user = 'alice') => ssh(gw.port, gw.keys.ed25519, command, { user, extra: ['-b', bind] });

  it('maxConnectionsPerSource disconnects with a reason; another source is unaffected', async () => {
    const held = ['alice', 'bob', 'carol'].map((user) => sshFrom('127.0.0.5', 'sleep 2', user));
    await until(() => running() >= 3, 5000);
    const refused = await sshFrom('127.0.0.5', 'echo no', 'bob');
    expect(refused.code).toBe(255);
    expect(refused.stderr).toContain('too many connections from 127.0.0.5 (limits.maxConnectionsPerSource = 3)');
    const other = await sshFrom('127.0.0.6', 'echo other-source', 'carol');
    expect(other.stdout.toString()).toBe('other-source\n');
    await Promise.all(held);
  });

  it('maxCommandsPerUser and maxCommands answer on stderr with exit 75; other users are unaffected', async () => {
    const held = [sshFrom('127.0.0.7', 'sleep 2'), sshFrom('127.0.0.8', 'sleep 2')];
    await until(() => running() >= 2, 5000);
    const third = await sshFrom('127.0.0.9', 'echo no');
    expect(third.code).toBe(75);
    expect(third.stderr).toContain('user alice already runs 2 commands (limits.maxCommandsPerUser)');
    const others = [sshFrom('127.0.0.10', 'sleep 1; echo bob-ran', 'bob'), sshFrom('127.0.0.11', 'sleep 1; echo carol-ran', 'carol')];
    await until(() => running() >= 4, 5000);
    const overTotal = await sshFrom('127.0.0.12', 'echo no', 'bob');
    expect(overTotal.code).toBe(75);
    expect(overTotal.stderr).toContain('4 commands are running on gw-test (limits.maxCommands)');
    expect((await others[0]!).stdout.toString()).toBe('bob-ran\n');
    expect((await others[1]!).stdout.toString()).toBe('carol-ran\n');
    await Promise.all(held);
    const audit = gw.audit();
    expect(audit.some((a) => a.result === 'refused:max-commands-per-user')).toBe(true);
    expect(audit.some((a) => a.result === 'refused:max-commands')).toBe(true);
  });

  it('maxCommandBytes and maxEnvVars refuse the command with exit 75', async () => {
    const long = await ssh(gw.port, gw.keys.ed25519, `echo ${'x'.repeat(200)}`, { user: 'bob' });
    expect(long.code).toBe(75);
    expect(long.stderr).toContain('over limits.maxCommandBytes (100)');
    const env = await ssh(gw.port, gw.keys.ed25519, 'echo no', {
      user: 'bob',
      extra: ['-o', 'SendEnv=RD_*'],
      env: { ...process.env, RD_A: '1', RD_B: '2', RD_C: '3' },
    });
    expect(env.code).toBe(75);
    expect(env.stderr).toContain('limits.maxEnvVars (2)');
    expect((await ssh(gw.port, gw.keys.ed25519, 'echo fine', { user: 'bob' })).stdout.toString()).toBe('fine\n');
  });

  it('maxChannelsPerConnection refuses a third session channel on one connection', async () => {
    const client = await connectClient(gw.port, gw.keys.ed25519, 'carol');
    try {
      const a = execOn(client, 'sleep 1; echo a');
      const b = execOn(client, 'sleep 1; echo b');
      await sleep(200);
      await expect(execOn(client, 'echo c')).rejects.toThrow(/Channel open failure/);
      expect((await a).stdout.toString()).toBe('a\n');
      expect((await b).stdout.toString()).toBe('b\n');
    } finally {
      client.end();
    }
    expect(gw.output()).toContain('limits.maxChannelsPerConnection reached');
  });

  it('loginGraceSeconds disconnects a client that never authenticates', async () => {
    const t0 = Date.now();
    const closedAfter = await new Promise<number>((resolve) => {
      const s = connect(gw.port, '127.0.0.1', () => s.write('SSH-2.0-slowloris\r\n'));
      s.on('data', () => {});
      s.on('close', () => resolve(Date.now() - t0));
      s.on('error', () => {});
    });
    expect(closedAfter).toBeGreaterThanOrEqual(900);
    expect(closedAfter).toBeLessThan(15_000);
    // The client can see the close before the log line has come through the gateway's stdout pipe.
    await until(() => gw.output().includes('login grace time (limits.loginGraceSeconds) exceeded'), 2000);
    expect(gw.output()).toContain('login grace time (limits.loginGraceSeconds) exceeded');
  });

  it('idleTimeoutSeconds closes an idle connection but not one whose command is still running', async () => {
    const idle = await connectClient(gw.port, gw.keys.ed25519, 'carol');
    const busy = await connectClient(gw.port, gw.keys.ed25519, 'bob');
    const idleClosed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      idle.once('close', () => resolve(Date.now() - t0));
    });
    const long = await execOn(busy, 'sleep 2.5; echo survived');
    expect(long.stdout.toString()).toBe('survived\n');
    expect(await idleClosed).toBeLessThan(15_000);
    busy.end();
    await until(() => gw.output().includes('idle timeout (limits.idleTimeoutSeconds)'), 2000);
    expect(gw.output()).toContain('idle timeout (limits.idleTimeoutSeconds)');
  });

  it('failed auths block only the offending key from that source, exponentially', async () => {
    mkdirSync(join(gw.dir, 'bad'));
    const bad = makeClientKeys(join(gw.dir, 'bad'));
    for (let i = 0; i < 4; i++) expect((await run('ssh', [...sshArgs(gw.port, bad.ed25519), 'alice@127.0.0.1', 'true'])).code).toBe(255);
    await until(() => /blocked for \d+ s more \(limits\.authFailures\)/.test(gw.output()), 3000);
    expect(gw.output()).toMatch(/blocked for \d+ s more \(limits\.authFailures\)/);
    // Rundeck's good key from the same source still gets in
    const good = await ssh(gw.port, gw.keys.ed25519, 'echo good-key', { user: 'alice' });
    expect(good.stdout.toString()).toBe('good-key\n');
  });
});
