import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { errors } from '../errors.js';
import { expandNodePath } from '../config/etcdConnection.js';

const MAX_BYTES = 4096;
const MIN_LENGTH = 16;

/**
 * The etcd user's password: one line of at least 16 printable characters in a regular
 * file owned by root or the gateway's account, mode 0600 or stricter (`%n` is the node).
 */
export function readEtcdPassword(path: string, node: string, key: string): string {
  const file = expandNodePath(path, node);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw errors.etcdPasswordFile(key, file, missing ? 'does not exist (execgate certs writes one: etcd-password; install.sh installs it)' : (err as Error).message);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw errors.etcdPasswordFile(key, file, 'is not a regular file');
    if ((st.mode & 0o077) !== 0) throw errors.etcdPasswordFile(key, file, `has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, readable by group or others: run "chmod 600 ${file}"`);
    const self = process.geteuid?.() ?? 0;
    if (st.uid !== 0 && st.uid !== self) throw errors.etcdPasswordFile(key, file, `is owned by uid ${st.uid}, not root or the gateway's account (uid ${self})`);
    const buf = Buffer.alloc(MAX_BYTES);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString('utf8').trim();
    if (!/^[\x21-\x7e]+$/.test(text) || text.length < MIN_LENGTH) throw errors.etcdPasswordFile(key, file, `holds no password (one line of at least ${MIN_LENGTH} printable characters)`);
    return text;
  } finally {
    closeSync(fd);
  }
}
