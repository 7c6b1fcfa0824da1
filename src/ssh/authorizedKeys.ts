import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { fingerprintOf } from './hostKeys.js';
import { parseKeyOptions, type KeyOptions } from './keyOptions.js';

const { utils } = ssh2;

export interface AuthorizedKey {
  line: number;
  type: string;
  blob: Buffer;
  comment: string;
  options: string;
  parsedOptions: KeyOptions;
  fingerprint: string;
  verify(data: Buffer, signature: Buffer, hashAlgo?: string): boolean;
}

export interface AuthorizedKeysFile {
  keys: AuthorizedKey[];
  problems: string[];
}

const KEY_TYPE = /^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9-]+@openssh\.com)$/;

/** OpenSSH's RSA_MIN_MODULUS_SIZE (since 8.x: 1024 refused; NIST and ssh-audit want 2048). */
export const MIN_RSA_BITS = 2048;

/** Bits of the RSA modulus in an ssh-rsa public key blob (string type, mpint e, mpint n). */
export function rsaModulusBits(blob: Buffer): number | null {
  let p = 0;
  const field = (): Buffer | null => {
    if (p + 4 > blob.length) return null;
    const len = blob.readUInt32BE(p);
    if (p + 4 + len > blob.length) return null;
    const out = blob.subarray(p + 4, p + 4 + len);
    p += 4 + len;
    return out;
  };
  if (field()?.toString() !== 'ssh-rsa' || !field()) return null;
  const n = field();
  if (!n) return null;
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i) * 8 - (Math.clz32(n[i]!) - 24);
}

/**
 * Keys execgate refuses whatever authorized_keys says: DSA (1024-bit, SHA-1, removed
 * from OpenSSH 9.8) and RSA under 2048 bits (factorable). Returns why, or null.
 */
export function keyStrengthProblem(type: string, blob: Buffer): string | null {
  if (type === 'ssh-dss') return 'DSA keys (ssh-dss) are refused: use ed25519 (ssh-keygen -t ed25519) or RSA of at least 2048 bits';
  if (type === 'ssh-rsa') {
    const bits = rsaModulusBits(blob);
    if (bits === null) return 'malformed RSA public key';
    if (bits < MIN_RSA_BITS) return `RSA key of ${bits} bits is refused (at least ${MIN_RSA_BITS}): use ed25519 or ssh-keygen -t rsa -b 3072`;
  }
  return null;
}

/** Splits off a leading options field, honouring double quotes ("from=\"a b\"" etc.). */
function splitOptions(line: string): { options: string; rest: string } {
  const firstWord = line.split(/\s/, 1)[0] ?? '';
  if (KEY_TYPE.test(firstWord)) return { options: '', rest: line };
  let inQuotes = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && inQuotes) {
      i++;
      continue;
    }
    if (c === '"') inQuotes = !inQuotes;
    else if (!inQuotes && (c === ' ' || c === '\t')) {
      return { options: line.slice(0, i), rest: line.slice(i).trimStart() };
    }
  }
  return { options: line, rest: '' };
}

/** Parses authorized_keys text; a bad line is reported by number and skipped. */
export function parseAuthorizedKeys(text: string, source = 'authorized_keys', allowEnvironment = false): AuthorizedKeysFile {
  const keys: AuthorizedKey[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((rawLine, index) => {
    const lineNo = index + 1;
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) return;
    const { options, rest } = splitOptions(line);
    const [type, b64, ...commentParts] = rest.split(/\s+/);
    if (!type || !b64 || !KEY_TYPE.test(type)) {
      problems.push(`${source}:${lineNo}: not a public key line (expected "[options] <type> <base64> [comment]")`);
      return;
    }
    const parsed = utils.parseKey(`${type} ${b64}`);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key || key instanceof Error) {
      problems.push(`${source}:${lineNo}: ${key instanceof Error ? key.message : 'unparseable key'}`);
      return;
    }
    let parsedOptions: KeyOptions;
    try {
      parsedOptions = parseKeyOptions(options, allowEnvironment);
    } catch (err) {
      problems.push(`${source}:${lineNo}: ${(err as Error).message}; key skipped`);
      return;
    }
    const blob = key.getPublicSSH();
    const weak = keyStrengthProblem(key.type, blob);
    if (weak) {
      problems.push(`${source}:${lineNo}: ${weak}; key skipped`);
      return;
    }
    keys.push({
      line: lineNo,
      type: key.type,
      blob,
      comment: commentParts.join(' '),
      options,
      parsedOptions,
      fingerprint: fingerprintOf(blob),
      verify: (data, signature, hashAlgo) => key.verify(data, signature, hashAlgo) === true,
    });
  });
  return { keys, problems };
}

export function readAuthorizedKeys(path: string, allowEnvironment = false): AuthorizedKeysFile {
  return parseAuthorizedKeys(readFileSync(path, 'utf8'), path, allowEnvironment);
}

export interface FileOwner {
  uid: number;
  name: string;
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * sshd's StrictModes for an authorized_keys file: the file (after resolving symlinks)
 * and every directory above it must be owned by root or by one of the given accounts
 * and not be writable by group or others, or someone else could add a key. Above the
 * file's own directory a root-owned sticky directory (/tmp) is accepted: no one can
 * rename or remove another account's entries in it. Returns the problem, or null.
 * Throws (ENOENT...) when the file cannot be resolved.
 */
export function strictModesProblem(path: string, owners: readonly FileOwner[]): string | null {
  const allowed = new Set([0, ...owners.map((o) => o.uid)]);
  const who = ['root', ...owners.filter((o) => o.uid !== 0).map((o) => o.name)].filter((n, i, all) => all.indexOf(n) === i).join(' or ');
  const real = realpathSync(path);
  const shown = real === path ? path : `${path} (${real})`;
  const st = statSync(real);
  if (!st.isFile()) return `authorized_keys ${shown} is not a regular file`;
  if (!allowed.has(st.uid)) return `authorized_keys ${shown} is owned by uid ${st.uid}, not by ${who}: run "chown root ${real}" (StrictModes, as sshd)`;
  if (st.mode & 0o022) return `authorized_keys ${shown} has mode ${octal(st.mode)}, writable by group or others: run "chmod go-w ${real}" (StrictModes, as sshd)`;
  let dir = dirname(real);
  for (let own = true; ; own = false) {
    const d = statSync(dir);
    if (!allowed.has(d.uid)) return `directory ${dir} above authorized_keys ${shown} is owned by uid ${d.uid}, not by ${who}: run "chown root ${dir}" (StrictModes, as sshd)`;
    const stickyRoot = !own && d.uid === 0 && (d.mode & 0o1000) !== 0;
    if (d.mode & 0o022 && !stickyRoot) return `directory ${dir} above authorized_keys ${shown} has mode ${octal(d.mode)}, writable by group or others: run "chmod go-w ${dir}" (StrictModes, as sshd)`;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}
