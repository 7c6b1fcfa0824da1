import { createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';

/**
 * The hybrid key exchange `mlkem768x25519-sha256` (draft-ietf-sshm-mlkem-hybrid-kex;
 * OpenSSH 9.9+, Debian 13's default): ML-KEM-768 (FIPS 203, from @noble/post-quantum)
 * and X25519 (RFC 7748, Node's OpenSSL), combined with SHA-256. The session stays
 * secret as long as either half holds.
 *
 * Wire format, ML-KEM part always first:
 *   client -> server  C_INIT  = ML-KEM-768 encapsulation key (1184) || X25519 public (32)
 *   server -> client  S_REPLY = ML-KEM-768 ciphertext (1088)        || X25519 public (32)
 *   K = SHA-256(ML-KEM shared secret (32) || X25519 shared secret (32))
 * K enters the exchange hash and the key derivation as an SSH `string`, not an mpint
 * (the ssh2 wiring returns these 32 bytes unconverted; see patches/ssh2+1.17.0.patch).
 */
export const MLKEM768X25519_SHA256 = 'mlkem768x25519-sha256';

const MLKEM_PUBLIC_BYTES = 1184;
const MLKEM_CIPHERTEXT_BYTES = 1088;
const X25519_BYTES = 32;
export const CLIENT_INIT_BYTES = MLKEM_PUBLIC_BYTES + X25519_BYTES;
export const SERVER_REPLY_BYTES = MLKEM_CIPHERTEXT_BYTES + X25519_BYTES;

// DER wrappers for raw X25519 keys (RFC 8410): SubjectPublicKeyInfo and PKCS#8.
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export class HybridKexError extends Error {}

/** Fixed randomness, for known-answer tests only. */
export interface ServerRandomness {
  x25519PrivateKey: Uint8Array;
  mlkemMessage: Uint8Array;
}
export interface ClientRandomness {
  x25519PrivateKey: Uint8Array;
  mlkemSeed: Uint8Array;
}

export interface ServerResponse {
  reply: Buffer;
  sharedSecret: Buffer;
}

/** Server side: answers the client's C_INIT with S_REPLY and the shared secret K. */
export function serverRespond(clientInit: Uint8Array, randomness?: ServerRandomness): ServerResponse {
  if (clientInit.length !== CLIENT_INIT_BYTES) throw new HybridKexError(`client key share is ${clientInit.length} bytes, expected ${CLIENT_INIT_BYTES}`);
  const clientMlkemPublic = clientInit.subarray(0, MLKEM_PUBLIC_BYTES);
  const clientX25519Public = clientInit.subarray(MLKEM_PUBLIC_BYTES);

  let encapsulated: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    // Checks the encapsulation key's encoding (FIPS 203 7.2 modulus check) and throws.
    encapsulated = ml_kem768.encapsulate(clientMlkemPublic, randomness?.mlkemMessage);
  } catch (err) {
    throw new HybridKexError(`invalid ML-KEM-768 encapsulation key: ${(err as Error).message}`);
  }
  const ours = randomness ? x25519FromPrivate(randomness.x25519PrivateKey) : x25519Generate();
  const classical = x25519Shared(ours.privateKey, clientX25519Public);
  return {
    reply: Buffer.concat([encapsulated.cipherText, ours.publicRaw]),
    sharedSecret: combine(encapsulated.sharedSecret, classical),
  };
}

export interface ClientHandshake {
  /** C_INIT, to send in SSH_MSG_KEX_HYBRID_INIT. */
  init: Buffer;
  /** Takes S_REPLY, returns K. */
  finish(serverReply: Uint8Array): Buffer;
}

/** Client side (used by execgate's own test and bench clients). */
export function clientStart(randomness?: ClientRandomness): ClientHandshake {
  const kem = ml_kem768.keygen(randomness?.mlkemSeed);
  const ours = randomness ? x25519FromPrivate(randomness.x25519PrivateKey) : x25519Generate();
  return {
    init: Buffer.concat([kem.publicKey, ours.publicRaw]),
    finish(serverReply) {
      if (serverReply.length !== SERVER_REPLY_BYTES) throw new HybridKexError(`server key share is ${serverReply.length} bytes, expected ${SERVER_REPLY_BYTES}`);
      // ML-KEM decapsulation never fails: a corrupted ciphertext yields an unrelated
      // secret (implicit rejection), so the server's signature over H will not verify.
      const post = ml_kem768.decapsulate(serverReply.subarray(0, MLKEM_CIPHERTEXT_BYTES), kem.secretKey);
      const classical = x25519Shared(ours.privateKey, serverReply.subarray(MLKEM_CIPHERTEXT_BYTES));
      return combine(post, classical);
    },
  };
}

function combine(postQuantum: Uint8Array, classical: Uint8Array): Buffer {
  return createHash('sha256').update(postQuantum).update(classical).digest();
}

interface X25519Pair {
  privateKey: KeyObject;
  publicRaw: Buffer;
}

function x25519Generate(): X25519Pair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicRaw: rawPublic(publicKey) };
}

function x25519FromPrivate(raw: Uint8Array): X25519Pair {
  if (raw.length !== X25519_BYTES) throw new HybridKexError('X25519 private key must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicRaw: rawPublic(createPublicKey(privateKey)) };
}

function rawPublic(publicKey: KeyObject): Buffer {
  return publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

function x25519Shared(privateKey: KeyObject, peerPublic: Uint8Array): Buffer {
  if (peerPublic.length !== X25519_BYTES) throw new HybridKexError(`X25519 share is ${peerPublic.length} bytes, expected 32`);
  let shared: Buffer;
  try {
    const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peerPublic]), format: 'der', type: 'spki' });
    // OpenSSL refuses low-order points (an all-zero result) with an error.
    shared = diffieHellman({ privateKey, publicKey });
  } catch (err) {
    throw new HybridKexError(`invalid X25519 share: ${(err as Error).message}`);
  }
  if (shared.every((b) => b === 0)) throw new HybridKexError('invalid X25519 share: all-zero shared secret');
  return shared;
}
