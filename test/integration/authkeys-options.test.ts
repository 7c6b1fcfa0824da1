import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync, appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, makeClientKeys, type TestGateway, type ClientKeys } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

const pub = (k: ClientKeys) => readFileSync(`${k.ed25519}.pub`, 'utf8').trim();

describe('authorized_keys options, with the real OpenSSH client', () => {
  let gw: TestGateway;
  const keys: Record<string, ClientKeys> = {};
  beforeAll(async () => {
    gw = await startTestGateway({ auth: { permitKeyEnvironment: true } });
    for (const name of ['forced', 'from', 'restricted', 'expired', 'env', 'late']) {
      mkdirSync(join(gw.dir, name));
      keys[name] = makeClientKeys(join(gw.dir, name));
    }
    const lines = [
      readFileSync(`${gw.keys.ed25519}.pub`, 'utf8').trim(),
      `command="echo forced; echo original=$SSH_ORIGINAL_COMMAND" ${pub(keys.forced!)}`,
      `from="198.18.0.0/15,!127.0.0.1" ${pub(keys.from!)}`,
      `restrict ${pub(keys.restricted!)}`,
      `expiry-time="20200101" ${pub(keys.expired!)}`,
      'this line is broken',
      `environment="DEPLOY_ENV=prod" ${pub(keys.env!)}`,
    ];
    writeFileSync(join(gw.dir, 'authorized_keys'), lines.join('\n') + '\n');
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('command= replaces the command and keeps the original in SSH_ORIGINAL_COMMAND', async () => {
    const r = await ssh(gw.port, keys.forced!.ed25519, 'rm -rf /important');
    expect(r.stdout.toString()).toBe('forced\noriginal=rm -rf /important\n');
    expect(r.code).toBe(0);
  });

  it('from= refuses a key from an address outside the pattern list', async () => {
    const r = await ssh(gw.port, keys.from!.ed25519, 'echo no');
    expect(r.code).toBe(255);
    expect(await until(() => gw.output().includes('is not allowed from 127.0.0.1 (from= in'), 3000)).not.toBeNull();
  });

  it('restrict (and no-pty) refuse a terminal; without one the command runs', async () => {
    // OpenSSH's client gives up when a forced (-tt) terminal is refused, as it does with sshd.
    const forced = await ssh(gw.port, keys.restricted!.ed25519, 'echo should-not-run', { extra: ['-tt'] });
    expect(forced.stderr).toContain('PTY allocation request failed');
    expect(forced.stdout.toString()).not.toContain('should-not-run');
    const plain = await ssh(gw.port, keys.restricted!.ed25519, 'tty || true');
    expect(plain.stdout.toString()).toBe('not a tty\n');
  });

  it('expiry-time in the past refuses the key', async () => {
    const r = await ssh(gw.port, keys.expired!.ed25519, 'echo no');
    expect(r.code).toBe(255);
    expect(gw.output()).toMatch(/expired at 20(19|20)-/);
  });

  it('environment= sets variables when auth.permitKeyEnvironment is on', async () => {
    const r = await ssh(gw.port, keys.env!.ed25519, 'echo $DEPLOY_ENV');
    expect(r.stdout.toString()).toBe('prod\n');
  });

  it('one bad line is reported with its line number and the other keys keep working', async () => {
    expect(gw.output()).toMatch(/authorized_keys:6: not a public key line/);
    const r = await ssh(gw.port, gw.keys.ed25519, 'echo still-ok');
    expect(r.stdout.toString()).toBe('still-ok\n');
  });

  it('a key appended to the file works without a restart', async () => {
    const before = await ssh(gw.port, keys.late!.ed25519, 'echo late');
    expect(before.code).toBe(255);
    appendFileSync(join(gw.dir, 'authorized_keys'), pub(keys.late!) + '\n');
    const after = await ssh(gw.port, keys.late!.ed25519, 'echo late');
    expect(after.stdout.toString()).toBe('late\n');
  });
});
