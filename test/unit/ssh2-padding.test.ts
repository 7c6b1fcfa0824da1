import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The ssh2 patch takes packet padding from one block of CSPRNG output refilled in
 * bulk instead of a randomFillSync call per packet. These tests load ssh2's cipher
 * module with randomFillSync recorded and check, for every cipher ssh2 can use
 * outbound, that the padding of consecutive packets is exactly the CSPRNG's output,
 * in order, no byte used twice, and that the padding rules of RFC 4253 6 still hold.
 */
const require = createRequire(import.meta.url);
const nodeCrypto = require('node:crypto') as typeof import('node:crypto');
const cryptoPath = require.resolve('ssh2/lib/protocol/crypto.js');

interface Cipher {
  allocPacket(payloadLen: number): Buffer;
}
interface Ssh2Crypto {
  CIPHER_INFO: Record<string, { keyLen: number; ivLen: number; blockLen: number; authLen: number }>;
  MAC_INFO: Record<string, { len: number }>;
  NullCipher: new (seqno: number, onWrite: (p: Buffer) => void) => Cipher;
  createCipher(config: unknown): Cipher;
}

const recorded: Buffer[] = [];
let ssh2crypto: Ssh2Crypto;
const original = nodeCrypto.randomFillSync;

beforeAll(() => {
  // Load a fresh copy of the module while randomFillSync is recorded (it binds the function at load).
  delete require.cache[cryptoPath];
  (nodeCrypto as { randomFillSync: unknown }).randomFillSync = (buf: Buffer, offset?: number, size?: number) => {
    const out = original(buf, offset, size);
    const start = offset ?? 0;
    recorded.push(Buffer.from(buf.subarray(start, size === undefined ? undefined : start + size)));
    return out;
  };
  try {
    ssh2crypto = require(cryptoPath) as Ssh2Crypto;
  } finally {
    (nodeCrypto as { randomFillSync: unknown }).randomFillSync = original;
  }
  delete require.cache[cryptoPath];
});

/**
 * Where the next padding must come from: every allocPacket in this file draws from the one
 * pool of the module loaded above, so all paddings, in allocation order, walk through the
 * recorded CSPRNG output. A padding is the next unused bytes of the current block, or (when
 * fewer bytes are left than it needs) the start of the next block; anything else is a fault.
 */
const cursor = { block: 0, pos: 0 };
function expectNextDrawn(pad: Buffer): void {
  let block = recorded[cursor.block];
  if (block && cursor.pos + pad.length > block.length) {
    cursor.block += 1;
    cursor.pos = 0;
    block = recorded[cursor.block];
  }
  expect(block, 'a padding with no CSPRNG block left to come from').toBeDefined();
  expect(block!.subarray(cursor.pos, cursor.pos + pad.length).equals(pad), `padding at block ${cursor.block} offset ${cursor.pos}`).toBe(true);
  cursor.pos += pad.length;
}

/** A cipher and, for the CTR ciphers, a MAC: encrypt-then-MAC leaves the length field unaligned. */
function cipherFor(spec: string): { cipher: Cipher; block: number; lengthAligned: boolean } {
  if (spec === 'none') return { cipher: new ssh2crypto.NullCipher(0, () => {}), block: 8, lengthAligned: true };
  const [name, macName] = spec.split('+') as [string, string | undefined];
  const info = ssh2crypto.CIPHER_INFO[name]!;
  const mac = macName ? ssh2crypto.MAC_INFO[macName]! : undefined;
  const cipher = ssh2crypto.createCipher({
    outbound: {
      onWrite: () => {},
      cipherInfo: info,
      cipherKey: randomBytes(info.keyLen),
      cipherIV: info.ivLen ? randomBytes(info.ivLen) : undefined,
      macInfo: mac,
      macKey: mac ? randomBytes(mac.len) : undefined,
      seqno: 0,
    },
  });
  return { cipher, block: Math.max(8, info.blockLen), lengthAligned: macName !== undefined && !macName.includes('-etm@') };
}

const CIPHERS = ['none', 'chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr+hmac-sha2-256-etm@openssh.com', 'aes256-ctr+hmac-sha2-256'];

describe('ssh2 packet padding comes from the CSPRNG in bulk', () => {
  it.each(CIPHERS)('%s: every padding byte is the next unused byte of the CSPRNG output', (spec) => {
    const { cipher, block, lengthAligned } = cipherFor(spec);
    const paddings: Buffer[] = [];
    const callsBefore = recorded.length;
    // Payload sizes of every remainder modulo the block size, small and up to a full channel packet.
    const sizes = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? i % 64 : i % 3 === 1 ? 32768 + 9 - (i % 17) : (i * 7919) % 35000));
    for (const payloadLen of sizes) {
      const packet = cipher.allocPacket(payloadLen);
      const padLen = packet[4]!;
      const packetLen = packet.readUInt32BE(0);
      expect(padLen).toBeGreaterThanOrEqual(4);
      expect(padLen).toBeLessThan(4 + 2 * block);
      expect(packetLen).toBe(1 + payloadLen + padLen);
      expect((lengthAligned ? packetLen + 4 : packetLen) % block).toBe(0);
      paddings.push(Buffer.from(packet.subarray(5 + payloadLen, 5 + payloadLen + padLen)));
    }
    const calls = recorded.length - callsBefore;
    const used = paddings.reduce((n, p) => n + p.length, 0);
    // Bulk: a handful of refills for ~30 KB of padding, not one call per packet.
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(Math.ceil(used / 16384) + 1);
    for (const pad of paddings) expectNextDrawn(pad);
  });

  it('two ciphers in a row never hand out the same padding bytes', () => {
    const a = cipherFor('aes128-gcm@openssh.com').cipher;
    const b = cipherFor('chacha20-poly1305@openssh.com').cipher;
    const seen = new Set<string>();
    const draws: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      for (const c of [a, b]) {
        const payloadLen = 100 + (i % 50);
        const p = c.allocPacket(payloadLen);
        const padLen = p[4]!;
        const drawn = Buffer.from(p.subarray(5 + payloadLen, 5 + payloadLen + padLen));
        draws.push(drawn);
        const pad = drawn.toString('hex');
        // 12+ random bytes colliding by chance is impossible in 4000 draws; a reuse would collide.
        if (padLen >= 12) {
          expect(seen.has(pad)).toBe(false);
          seen.add(pad);
        }
      }
    }
    expect(seen.size).toBeGreaterThan(100);
    for (const pad of draws) expectNextDrawn(pad);
  });
});
