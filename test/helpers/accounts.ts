import { execFileSync } from 'node:child_process';

/** True when NSS knows the name in that database (passwd or group). */
export function known(name: string, db: 'passwd' | 'group' = 'passwd'): boolean {
  try {
    execFileSync('getent', [db, name]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates a local account with a home and /bin/sh unless it exists; returns a function
 * that removes it again only if it was created here (root only).
 */
export function ensureAccount(name: string, groups: string[] = []): () => void {
  if (known(name)) return () => {};
  execFileSync('useradd', ['-m', '-s', '/bin/sh', ...(groups.length ? ['-G', groups.join(',')] : []), name]);
  return () => execFileSync('userdel', ['-r', name], { stdio: 'ignore' });
}
