import { statSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { errors } from '../errors.js';
import { assertSsh2Patched } from './ssh2Patch.js';

const { utils } = ssh2;

export interface HostKey {
  path: string;
  type: string;
  pem: Buffer;
  fingerprint: string;
}

/** OpenSSH-style fingerprint of a public key blob: SHA256:<base64 without padding>. */
export function fingerprintOf(publicBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '');
}

export function loadHostKey(path: string): HostKey {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw errors.hostKeyMissing(path);
    throw errors.hostKeyUnreadable(path, (err as Error).message);
  }
  if (mode & 0o077) throw errors.hostKeyTooOpen(path, mode);
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw errors.hostKeyUnreadable(path, (err as Error).message);
  }
  const parsed = utils.parseKey(pem);
  if (parsed instanceof Error) throw errors.hostKeyInvalid(path, parsed.message);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) throw errors.hostKeyInvalid(path, 'not a private key');
  return { path, type: key.type, pem, fingerprint: fingerprintOf(key.getPublicSSH()) };
}

/** Loads every configured host key and insists on one that old JSch can negotiate. */
export function loadHostKeys(paths: string[]): HostKey[] {
  const keys = paths.map(loadHostKey);
  if (!keys.some((k) => k.type === 'ssh-rsa' || k.type.startsWith('ecdsa-'))) {
    throw errors.hostKeyNoLegacyType();
  }
  return keys;
}

export interface GeneratedKeyFiles {
  privatePath: string;
  publicPath: string;
}

/** Writes an OpenSSH key pair (private 0600); keeps an existing one unless overwrite. */
export function writeKeyPair(dir: string, name: string, type: 'ed25519' | 'rsa', comment: string, overwrite = false): GeneratedKeyFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const privatePath = join(dir, name);
  const publicPath = `${privatePath}.pub`;
  if (existsSync(privatePath) && !overwrite) return { privatePath, publicPath };
  assertSsh2Patched();
  const pair = type === 'rsa' ? utils.generateKeyPairSync('rsa', { bits: 3072, comment }) : utils.generateKeyPairSync('ed25519', { comment });
  writeFileSync(privatePath, pair.private, { mode: 0o600 });
  writeFileSync(publicPath, pair.public + '\n', { mode: 0o644 });
  return { privatePath, publicPath };
}

/** Host keys as execgate serves them: ed25519 for modern clients, RSA 3072 for old JSch. */
export function generateHostKeys(dir: string, overwrite = false): string[] {
  return [writeKeyPair(dir, 'ssh_host_ed25519_key', 'ed25519', 'execgate host key', overwrite).privatePath, writeKeyPair(dir, 'ssh_host_rsa_key', 'rsa', 'execgate host key', overwrite).privatePath];
}
