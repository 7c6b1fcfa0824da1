import { readFileSync } from 'node:fs';
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
