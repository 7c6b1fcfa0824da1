import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/**
 * Reads a secret of the etcd connection (a private key, the password) the way sshd reads a
 * host key: a regular file, not a symlink, owned by root or the gateway's account, no access
 * for group or others. `fail` turns a problem ("has mode 0644, …") into the error to throw;
 * `missing` is what to say when the file does not exist.
 */
export function readPrivateFile(path: string, fail: (problem: string) => Error, missing: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw fail((err as NodeJS.ErrnoException).code === 'ENOENT' ? missing : (err as Error).message);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail('is not a regular file');
    if ((st.mode & 0o077) !== 0) throw fail(`has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, readable by group or others: run "chmod 600 ${path}"`);
    const self = process.geteuid?.() ?? 0;
    if (st.uid !== 0 && st.uid !== self) throw fail(`is owned by uid ${st.uid}, not root or the gateway's account (uid ${self}): run "chown root ${path}"`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
