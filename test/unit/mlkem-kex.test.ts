import { describe, it, expect } from 'vitest';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { clientStart, serverRespond, CLIENT_INIT_BYTES, SERVER_REPLY_BYTES, HybridKexError } from '../../src/ssh/kex/mlkem768x25519.js';

const MLKEM_PUBLIC_BYTES = 1184;

// Low-order X25519 points (RFC 7748 section 7; the list libsodium and OpenSSH's own
// tests refuse): each makes the X25519 result all zero, whatever the private key.
const LOW_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

describe('mlkem768x25519-sha256 key agreement', () => {
  it('client and server derive the same 32-byte K from shares of the sizes the method defines', () => {
    const client = clientStart();
    expect(client.init.length).toBe(CLIENT_INIT_BYTES);
    expect(CLIENT_INIT_BYTES).toBe(1216);
    const { reply, sharedSecret } = serverRespond(client.init);
    expect(reply.length).toBe(SERVER_REPLY_BYTES);
    expect(SERVER_REPLY_BYTES).toBe(1120);
    expect(sharedSecret.length).toBe(32);
    expect(client.finish(reply).equals(sharedSecret)).toBe(true);
  });

  it('is deterministic under fixed randomness and fresh otherwise', () => {
    const fixedClient = { mlkemSeed: Buffer.alloc(64, 7), x25519PrivateKey: Buffer.alloc(32, 9) };
    const fixedServer = { mlkemMessage: Buffer.alloc(32, 3), x25519PrivateKey: Buffer.alloc(32, 5) };
    const a = serverRespond(clientStart(fixedClient).init, fixedServer);
    const b = serverRespond(clientStart(fixedClient).init, fixedServer);
    expect(a.reply.equals(b.reply)).toBe(true);
    expect(a.sharedSecret.equals(b.sharedSecret)).toBe(true);
    const c = serverRespond(clientStart().init);
    expect(c.sharedSecret.equals(a.sharedSecret)).toBe(false);
  });

  it('refuses a client share of the wrong length, naming both lengths', () => {
    const init = clientStart().init;
    for (const bad of [init.subarray(0, CLIENT_INIT_BYTES - 1), Buffer.concat([init, Buffer.alloc(1)]), Buffer.alloc(0), Buffer.alloc(32)]) {
      expect(() => serverRespond(bad)).toThrow(HybridKexError);
      expect(() => serverRespond(bad)).toThrow(new RegExp(`is ${bad.length} bytes, expected 1216`));
    }
  });

  it('refuses an ML-KEM encapsulation key with a coefficient not reduced mod q (FIPS 203 modulus check)', () => {
    const init = Buffer.from(clientStart().init);
    // The first 12-bit coefficient becomes 0xfff = 4095 >= q = 3329.
    init[0] = 0xff;
    init[1] = init[1]! | 0x0f;
    expect(() => serverRespond(init)).toThrow(/invalid ML-KEM-768 encapsulation key/);
  });

  it('refuses every low-order X25519 share from the client', () => {
    const init = clientStart().init;
    for (const point of LOW_ORDER_POINTS) {
      const hostile = Buffer.concat([init.subarray(0, MLKEM_PUBLIC_BYTES), Buffer.from(point, 'hex')]);
      expect(() => serverRespond(hostile), point).toThrow(/invalid X25519 share/);
    }
  });

  it('a corrupted ciphertext or server X25519 share gives the client a different K (the host key signature then fails)', () => {
    const client = clientStart();
    const { reply, sharedSecret } = serverRespond(client.init);
    const flippedCiphertext = Buffer.from(reply);
    flippedCiphertext[100] = flippedCiphertext[100]! ^ 0x01;
    expect(client.finish(flippedCiphertext).equals(sharedSecret)).toBe(false);
    const flippedShare = Buffer.from(reply);
    flippedShare[SERVER_REPLY_BYTES - 5] = flippedShare[SERVER_REPLY_BYTES - 5]! ^ 0x01;
    expect(client.finish(flippedShare).equals(sharedSecret)).toBe(false);
    const lowOrder = Buffer.concat([reply.subarray(0, 1088), Buffer.alloc(32)]);
    expect(() => client.finish(lowOrder)).toThrow(/invalid X25519 share/);
    expect(() => client.finish(reply.subarray(1))).toThrow(/expected 1120/);
  });

  it('any byte string as a client share either yields a 1120-byte reply or throws HybridKexError, never anything else', () => {
    const valid = clientStart().init;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 1300 }).map((b) => Buffer.from(b)),
          fc.uint8Array({ minLength: CLIENT_INIT_BYTES, maxLength: CLIENT_INIT_BYTES }).map((b) => Buffer.from(b)),
          fc.tuple(fc.nat(CLIENT_INIT_BYTES - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
            const b = Buffer.from(valid);
            b[i] = b[i]! ^ x;
            return b;
          }),
        ),
        (share) => {
          try {
            expect(serverRespond(share).reply.length).toBe(SERVER_REPLY_BYTES);
          } catch (err) {
            expect(err).toBeInstanceOf(HybridKexError);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('mlkem768x25519-sha256 known answers (test/fixtures/mlkem768x25519-kat.json)', () => {
  const kat = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/mlkem768x25519-kat.json'), 'utf8'));
  const hex = (s: string) => Buffer.from(s, 'hex');

  it("client side reproduces a real exchange with OpenSSH 9.9: same C_INIT, same K, and OpenSSH's signature verifies over H with K as a string", () => {
    const v = kat.openssh99;
    const client = clientStart({ mlkemSeed: hex(v.mlkem_seed), x25519PrivateKey: hex(v.x25519_client_priv) });
    expect(client.init.toString('hex')).toBe(v.C_INIT);
    const k = client.finish(hex(v.S_REPLY));
    expect(k.toString('hex')).toBe(v.K);

    const h = createHash('sha256');
    for (const field of [v.V_C, v.V_S, v.I_C, v.I_S, v.K_S, v.C_INIT, v.S_REPLY]) h.update(sshString(hex(field)));
    h.update(sshString(k)); // K as a string, not an mpint
    const exchangeHash = h.digest();
    expect(exchangeHash.toString('hex')).toBe(v.H);
    expect(verifyEcdsaP256(hex(v.K_S), hex(v.SIG), exchangeHash)).toBe(true);
  });

  it('server side answers published ML-KEM (NIST ACVP) and X25519 (RFC 7748) inputs with the published ciphertext and K = SHA-256(K_pq || K_cl)', () => {
    const { acvp_encaps: m, rfc7748: x } = kat;
    const clientInit = Buffer.concat([hex(m.ek), hex(x.alice_public)]);
    const { reply, sharedSecret } = serverRespond(clientInit, { mlkemMessage: hex(m.m), x25519PrivateKey: hex(x.bob_private) });
    expect(reply.toString('hex')).toBe(m.c + x.bob_public);
    const expected = createHash('sha256').update(hex(m.k)).update(hex(x.shared)).digest('hex');
    expect(sharedSecret.toString('hex')).toBe(expected);
  });
});

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** Reads consecutive SSH strings from a blob. */
function sshStrings(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < blob.length;) {
    const len = blob.readUInt32BE(i);
    out.push(blob.subarray(i + 4, i + 4 + len));
    i += 4 + len;
  }
  return out;
}

/** Verifies an SSH ecdsa-sha2-nistp256 signature blob over `data` with an SSH public key blob. */
function verifyEcdsaP256(keyBlob: Buffer, sigBlob: Buffer, data: Buffer): boolean {
  const [, , point] = sshStrings(keyBlob);
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point!.subarray(1, 33).toString('base64url'), y: point!.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  });
  const [, rs] = sshStrings(sigBlob);
  const fixed = (mpint: Buffer) => Buffer.concat([Buffer.alloc(32), mpint]).subarray(-32);
  const [r, s] = sshStrings(rs!);
  return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([fixed(r!), fixed(s!)]));
}
