import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

/** Key material shared by both servers, so neither has a cheaper key type. */
export interface BenchKeys {
  hostKeys: string[];
  /** ed25519 client key: OpenSSH client and the in-process ssh2 client. */
  clientEd25519: string;
  /** RSA client key in PEM, the only form old JSch reads. */
  clientRsaPem: string;
  /** authorized_keys text holding both client keys. */
  authorizedKeys: string;
}

function keygen(path: string, args: string[]): void {
  execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', 'execgate-bench', '-f', path]);
}

export function makeKeys(dir: string): BenchKeys {
  const hostEd = join(dir, 'ssh_host_ed25519_key');
  const hostRsa = join(dir, 'ssh_host_rsa_key');
  keygen(hostEd, ['-t', 'ed25519']);
  keygen(hostRsa, ['-t', 'rsa', '-b', '3072']);
  const clientEd25519 = join(dir, 'id_ed25519');
  const clientRsaPem = join(dir, 'id_rsa');
  keygen(clientEd25519, ['-t', 'ed25519']);
  keygen(clientRsaPem, ['-t', 'rsa', '-b', '3072', '-m', 'PEM']);
  const authorizedKeys = readFileSync(`${clientEd25519}.pub`, 'utf8') + readFileSync(`${clientRsaPem}.pub`, 'utf8');
  return { hostKeys: [hostEd, hostRsa], clientEd25519, clientRsaPem, authorizedKeys };
}

export function writeAuthorizedKeys(path: string, keys: BenchKeys): void {
  writeFileSync(path, keys.authorizedKeys);
  chmodSync(path, 0o644);
}
