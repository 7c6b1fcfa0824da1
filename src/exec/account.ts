import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { errors } from '../errors.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** Looks a local account up through NSS (getent), so LDAP/sssd accounts work too. */
export function lookupAccount(name: string, configKey = 'runAs.user'): Account {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split('\n')[0] ?? '';
  } catch {
    throw errors.accountUnknown(name, configKey);
  }
  const [user, , uid, gid, , home, shell] = line.split(':');
  if (!user || uid === undefined || gid === undefined) throw errors.accountUnknown(name, configKey);
  return { name: user, uid: Number(uid), gid: Number(gid), home: home || '/', shell: shell || '/bin/sh' };
}

export function currentAccount(): Account {
  const info = userInfo();
  return {
    name: info.username,
    uid: info.uid,
    gid: info.gid,
    home: info.homedir,
    shell: info.shell || '/bin/sh',
  };
}
