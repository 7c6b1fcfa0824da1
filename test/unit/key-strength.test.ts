import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { keyStrengthProblem, parseAuthorizedKeys, rsaModulusBits } from '../../src/ssh/authorizedKeys.js';
import { algorithmProfile } from '../../src/ssh/algorithms.js';

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
    const dir = mkdtempSync(join(tmpdir(), 'execgate-dsa-'));
    try {
      // Debian's OpenSSH 9.2 still generates DSA keys
      execFileSync('ssh-keygen', ['-q', '-t', 'dsa', '-N', '', '-f', join(dir, 'id_dsa')]);
      const dsa = readFileSync(join(dir, 'id_dsa.pub'), 'utf8').trim();
      const text = [rsaPublicLine(512), dsa, rsaPublicLine(1024), rsaPublicLine(2048)].join('\n');
      const { keys, problems } = parseAuthorizedKeys(text, 'ak');
      expect(keys.map((k) => k.line)).toEqual([4]);
      expect(problems[0]).toMatch(/^ak:1: RSA key of 512 bits is refused \(at least 2048\)/);
      expect(problems[1]).toMatch(/^ak:2: DSA keys \(ssh-dss\) are refused/);
      expect(problems[2]).toMatch(/^ak:3: RSA key of 1024 bits is refused/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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

describe('algorithm profile', () => {
  it('never offers plain zlib; ssh-rsa, NIST curves and hmac-sha1 only with allowSshRsaSha1', () => {
    const modern = algorithmProfile(false);
    const legacy = algorithmProfile(true);
    for (const p of [modern, legacy]) {
      expect(p.algorithms.compress).toEqual(['none', 'zlib@openssh.com']);
      expect(p.serverSigAlgs).not.toContain('ssh-dss');
      expect(p.algorithms.cipher.some((c) => c.endsWith('-cbc'))).toBe(false);
    }
    const offered = (p: typeof modern) => [...p.algorithms.kex, ...p.algorithms.serverHostKey, ...p.algorithms.hmac, ...p.serverSigAlgs];
    expect(offered(modern).filter((a) => a === 'ssh-rsa' || a.includes('nistp') && !a.startsWith('ecdsa-sha2') || a === 'hmac-sha1')).toEqual([]);
    expect(modern.algorithms.serverHostKey).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']);
    // JSch 0.1.55 (Rundeck <= 5.9): ECDH over NIST curves, aes-ctr, hmac-sha1, ssh-rsa
    expect(legacy.algorithms.kex).toEqual(expect.arrayContaining(['ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521']));
    expect(legacy.algorithms.serverHostKey).toContain('ssh-rsa');
    expect(legacy.algorithms.cipher).toEqual(expect.arrayContaining(['aes128-ctr', 'aes256-ctr']));
    expect(legacy.algorithms.hmac).toContain('hmac-sha1');
    expect(legacy.serverSigAlgs).toContain('ssh-rsa');
    expect(modern.serverSigAlgs).not.toContain('ssh-rsa');
  });
});
