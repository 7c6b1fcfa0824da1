import { errors } from '../errors.js';
import { expandNodePath } from '../config/etcdConnection.js';
import { MIN_TOKEN_LENGTH, parseTokenText } from '../config/tokenFile.js';
import { readPrivateFile } from './privateFile.js';

const MAX_BYTES = 4096;

/**
 * The etcd user's password: one line of at least 16 printable characters in a regular
 * file owned by root or the gateway's account, mode 0600 or stricter (`%n` is the node).
 */
export function readEtcdPassword(path: string, node: string, key: string): string {
  const file = expandNodePath(path, node);
  const fail = (problem: string) => errors.etcdPasswordFile(key, file, problem);
  const bytes = readPrivateFile(file, fail, 'does not exist (execgate certs writes one: etcd-password; install.sh installs it)');
  if (bytes.length > MAX_BYTES) throw fail(`is ${bytes.length} bytes, not a password file (one line)`);
  const password = parseTokenText(bytes.toString('utf8'));
  if (password === null) throw fail(`holds no password (one line of at least ${MIN_TOKEN_LENGTH} printable characters)`);
  return password;
}
