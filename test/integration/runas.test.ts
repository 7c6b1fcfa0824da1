import { describe, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClientKeys, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { labIt, notRoot } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { ensureAccount, known } from '../helpers/accounts.js';

const USER = 'alice';
const GROUP = 'egtest-ops';

describe('run-as: SSH usernames map to local accounts', () => {
  let gw: TestGateway | undefined;
  let keyDir: string | undefined;
  let aliceOnly = '';
  let both = '';
  const removals: Array<() => void> = [];
  const missing = notRoot();

  beforeAll(async () => {
    if (missing) return;
    if (!known(GROUP, 'group')) {
      execFileSync('groupadd', [GROUP]);
      removals.push(() => execFileSync('groupdel', [GROUP], { stdio: 'ignore' }));
    }
    removals.unshift(ensureAccount(USER, [GROUP]));
    // One shared file reaching two accounts: every key names the accounts it may log in as.
    keyDir = mkdtempSync(join(tmpdir(), 'execgate-runas-'));
    aliceOnly = makeClientKeys(keyDir).ed25519;
    mkdirSync(join(keyDir, 'ops'));
    both = makeClientKeys(join(keyDir, 'ops')).ed25519;
    const shared = join(keyDir, 'authorized_keys');
    writeFileSync(shared, `execgate-accounts="${USER}" ${readFileSync(`${aliceOnly}.pub`, 'utf8')}execgate-accounts="${USER},root" ${readFileSync(`${both}.pub`, 'utf8')}`);
    gw = await startTestGateway({ authorizedKeys: shared, runAs: { accounts: { alice: USER, ops: 'root' }, permitRoot: true } });
  });
  afterAll(async () => {
    await gw?.stop();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
    for (const remove of removals) remove();
  });

  labIt('a command for alice runs with her uid, gid, groups and HOME', missing, async () => {
    const r = await ssh(gw!.port, aliceOnly, 'id -u; id -g; id -G | tr " " "\\n" | sort -n | tr "\\n" " "; echo; echo $HOME; echo $USER; pwd', { user: 'alice' });
    expect(r.stderr).toBe('');
    const groups = execFileSync('id', ['-G', USER])
      .toString()
      .trim()
      .split(' ')
      .map(Number)
      .sort((a, b) => a - b)
      .join(' ');
    const expected = [execFileSync('id', ['-u', USER]).toString().trim(), execFileSync('id', ['-g', USER]).toString().trim(), groups + ' ', `/home/${USER}`, USER, `/home/${USER}`];
    expect(r.stdout.toString().split('\n').slice(0, 6)).toEqual(expected);
    expect(groups.split(' ').length).toBeGreaterThanOrEqual(2); // the supplementary group came along
  });

  labIt('a username not in runAs.accounts is rejected at authentication', missing, async () => {
    const r = await ssh(gw!.port, both, 'echo should-not-run', { user: 'mallory' });
    expect(r.code).toBe(255);
    expect(r.stdout.toString()).toBe('');
    expect(await until(() => gw!.output().includes('username \\"mallory\\" is not in runAs.accounts'), 3000)).not.toBeNull();
  });

  labIt('a key of the shared file logs in only as the accounts its execgate-accounts names', missing, async () => {
    const refused = await ssh(gw!.port, aliceOnly, 'echo should-not-run', { user: 'ops' });
    expect(refused.code).toBe(255);
    expect(refused.stdout.toString()).toBe('');
    expect(await until(() => /key SHA256:\S+ may log in only as alice, and ops runs as root \(execgate-accounts in [^"]*authorized_keys:1\)/.test(gw!.output()), 3000)).not.toBeNull();
    const ok = await ssh(gw!.port, both, 'id -u', { user: 'ops' });
    expect(ok.stdout.toString()).toBe('0\n');
  });
});
