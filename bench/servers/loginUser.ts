import { execFileSync } from 'node:child_process';
import { mkdirSync, chownSync } from 'node:fs';
import { userInfo } from 'node:os';

export interface LoginUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** true when this is a dedicated account (we are root), false when it is our own. */
  dedicated: boolean;
}

export const DEFAULT_BENCH_USER = 'execgate-bench';
const BENCH_HOME = '/var/lib/execgate-bench';

function lookup(name: string): LoginUser | null {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
    const [user, , uid, gid, , home] = line.split(':');
    if (!user) return null;
    return { name: user, uid: Number(uid), gid: Number(gid), home: home || '/', dedicated: true };
  } catch {
    return null;
  }
}

/**
 * The account both servers log in as: /bin/sh (dash, no rc files) and an empty home.
 * As root we create a dedicated system account once (and leave it: it owns nothing but
 * its empty home). Not as root, both servers run commands as the current user.
 */
export function ensureLoginUser(name = DEFAULT_BENCH_USER): LoginUser {
  const me = userInfo();
  if (me.uid !== 0) return { name: me.username, uid: me.uid, gid: me.gid, home: me.homedir, dedicated: false };
  let user = lookup(name);
  if (!user) {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', BENCH_HOME, '--shell', '/bin/sh', name]);
    // sshd (UsePAM no) refuses accounts whose password field starts with "!" (locked).
    execFileSync('usermod', ['-p', '*', name]);
    user = lookup(name);
    if (!user) throw new Error(`could not create the bench account ${name}`);
  }
  mkdirSync(user.home, { recursive: true, mode: 0o755 });
  chownSync(user.home, user.uid, user.gid);
  return user;
}
