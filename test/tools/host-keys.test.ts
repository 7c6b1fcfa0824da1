import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHostKey, writeKeyPair } from '../../src/ssh/hostKeys.js';

/** The raw 32-byte key inside an "ssh-ed25519 <base64>" line. */
function ed25519PublicKeyBytes(line: string): Buffer {
  const blob = Buffer.from(line.split(/\s+/)[1]!, 'base64');
  const nameLength = blob.readUInt32BE(0);
  const keyLength = blob.readUInt32BE(4 + nameLength);
  return blob.subarray(8 + nameLength, 8 + nameLength + keyLength);
}

describe('generated ed25519 keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-hostkeys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // ssh2 1.17.0 stripped leading zero bytes of the key itself: 1 key in 256 was
  // 31 bytes long and neither ssh2 nor OpenSSH could read it (fixed in patches/).
  it('stay valid when the public key starts with a zero byte', () => {
    let found: { privatePath: string; publicPath: string } | undefined;
    for (let i = 0; i < 20_000 && !found; i++) {
      const pair = writeKeyPair(dir, 'k', 'ed25519', 'test', true);
      const key = ed25519PublicKeyBytes(readFileSync(pair.publicPath, 'utf8'));
      expect(key.length).toBe(32);
      if (key[0] === 0) found = pair;
    }
    expect(found, 'no key with a leading zero byte in 20000 tries (p < 1e-30 unless keys are truncated)').toBeDefined();
    const loaded = loadHostKey(found!.privatePath);
    expect(loaded.type).toBe('ssh-ed25519');
    // OpenSSH agrees: it derives the same public key from the private file.
    const derived = execFileSync('ssh-keygen', ['-y', '-f', found!.privatePath], { encoding: 'utf8' });
    expect(derived.split(/\s+/)[1]).toBe(readFileSync(found!.publicPath, 'utf8').split(/\s+/)[1]);
  });
});
