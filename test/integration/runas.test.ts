import { describe, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { labIt, notRoot } from '../helpers/lab.js';
import { pollUntil } from '../helpers/proc.js';

const USER = 'alice';
const GROUP = 'egtest-ops';
const exists = (db: string, name: string) => {
  try {
    execFileSync('getent', [db, name]);
    return true;
  } catch {
    return false;
  }
};

describe('run-as: SSH usernames map to local accounts', () => {
  let gw: TestGateway | undefined;
  const created: Array<[string, string]> = [];
  const missing = notRoot();

  beforeAll(async () => {
    if (missing) return;
    if (!exists('group', GROUP)) {
      execFileSync('groupadd', [GROUP]);
      created.push(['groupdel', GROUP]);
    }
    if (!exists('passwd', USER)) {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', '-G', GROUP, USER]);
      created.unshift(['userdel', USER]);
    }
    gw = await startTestGateway({ runAs: { accounts: { alice: USER, ops: 'root' } } });
  });
  afterAll(async () => {
    await gw?.stop();
    for (const [cmd, name] of created) execFileSync(cmd, cmd === 'userdel' ? ['-r', name] : [name], { stdio: 'ignore' });
  });

  labIt('a command for alice runs with her uid, gid, groups and HOME', missing, async () => {
    const r = await ssh(gw!.port, gw!.keys.ed25519, 'id -u; id -g; id -G | tr " " "\\n" | sort -n | tr "\\n" " "; echo; echo $HOME; echo $USER; pwd', { user: 'alice' });
    expect(r.stderr).toBe('');
    const groups = execFileSync('id', ['-G', USER]).toString().trim().split(' ').map(Number).sort((a, b) => a - b).join(' ');
    const expected = [
      execFileSync('id', ['-u', USER]).toString().trim(),
      execFileSync('id', ['-g', USER]).toString().trim(),
      groups + ' ',
      `/home/${USER}`,
      USER,
      `/home/${USER}`,
    ];
    expect(r.stdout.toString().split('\n').slice(0, 6)).toEqual(expected);
    expect(groups.split(' ').length).toBeGreaterThanOrEqual(2); // the supplementary group came along
  });

  labIt('a username not in runAs.accounts is rejected at authentication', missing, async () => {
    const r = await ssh(gw!.port, gw!.keys.ed25519, 'echo should-not-run', { user: 'mallory' });
    expect(r.code).toBe(255);
    expect(r.stdout.toString()).toBe('');
    expect(await pollUntil(() => gw!.output().includes('username \\"mallory\\" is not in runAs.accounts'), 3000)).not.toBeNull();
  });
});
