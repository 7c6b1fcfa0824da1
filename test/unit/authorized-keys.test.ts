import { describe, it, expect } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { keyStrengthProblem, parseAuthorizedKeys, rsaModulusBits } from '../../src/ssh/authorizedKeys.js';
import { fixture } from '../helpers/fixtures.js';

const ed = ssh2.utils.generateKeyPairSync('ed25519').public;
const rsa = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 }).public;

describe('authorized_keys parsing', () => {
  it('reads keys with comments and options, skipping blanks and comments', () => {
    const text = `# team keys\n\n${ed} alice@laptop\nfrom="10.0.0.1,198.18.0.0/15",no-pty ${rsa} rundeck\n`;
    const { keys, problems } = parseAuthorizedKeys(text);
    expect(problems).toEqual([]);
    expect(keys.map((k) => [k.line, k.type])).toEqual([
      [3, 'ssh-ed25519'],
      [4, 'ssh-rsa'],
    ]);
    expect(keys[1]!.options).toBe('from="10.0.0.1,198.18.0.0/15",no-pty');
    expect(keys[0]!.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('options with quoted spaces stay one field', () => {
    const { keys } = parseAuthorizedKeys(`command="echo hi there",restrict ${ed}`);
    expect(keys[0]!.options).toBe('command="echo hi there",restrict');
  });

  it('reports a bad line by number and keeps the others', () => {
    const { keys, problems } = parseAuthorizedKeys(`${ed}\nssh-rsa AAAAnotbase64!!\ngarbage\n${rsa}\n`, 'ak');
    expect(keys).toHaveLength(2);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^ak:2: /);
    expect(problems[1]).toMatch(/^ak:3: /);
  });
});

/** An OpenSSH public key line for an RSA key of any size (ssh-keygen refuses < 1024). */
function rsaPublicLine(bits: number): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const parsed = ssh2.utils.parseKey(privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
  const key = Array.isArray(parsed) ? parsed[0]! : parsed;
  if (key instanceof Error) throw key;
  return `ssh-rsa ${key.getPublicSSH().toString('base64')}`;
}

describe('key strength policy', () => {
  it('reads the RSA modulus size from the public blob', () => {
    for (const bits of [512, 1024, 2047, 2048, 3072]) {
      const blob = Buffer.from(rsaPublicLine(bits).split(' ')[1]!, 'base64');
      expect(rsaModulusBits(blob)).toBe(bits);
    }
  });

  it('refuses DSA and RSA under 2048 bits in authorized_keys, naming the reason and the line', () => {
    // made once by Debian's OpenSSH 9.2 ssh-keygen -t dsa (newer OpenSSH no longer makes DSA keys)
    const dsa = readFileSync(fixture('dsa-key.pub'), 'utf8').trim();
    const text = [rsaPublicLine(512), dsa, rsaPublicLine(1024), rsaPublicLine(2048)].join('\n');
    const { keys, problems } = parseAuthorizedKeys(text, 'ak');
    expect(keys.map((k) => k.line)).toEqual([4]);
    expect(problems[0]).toMatch(/^ak:1: RSA key of 512 bits is refused \(at least 2048\)/);
    expect(problems[1]).toMatch(/^ak:2: DSA keys \(ssh-dss\) are refused/);
    expect(problems[2]).toMatch(/^ak:3: RSA key of 1024 bits is refused/);
  });

  it('accepts ed25519, ECDSA and RSA >= 2048', () => {
    const ed = ssh2.utils.generateKeyPairSync('ed25519').public;
    const ec = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).public;
    for (const line of [ed, ec, rsaPublicLine(2048)]) {
      const [type, b64] = line.split(' ');
      expect(keyStrengthProblem(type!, Buffer.from(b64!, 'base64'))).toBeNull();
    }
  });
});
