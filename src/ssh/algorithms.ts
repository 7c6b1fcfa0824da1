import { registerPostQuantumKex } from './kex/register.js';
import type { Algorithms, CipherAlgorithm, CompressionAlgorithm, KexAlgorithm, MacAlgorithm, ServerHostKeyAlgorithm } from 'ssh2';
import { ssh2SupportedAlgorithms } from './ssh2Internals.js';

/**
 * execgate's own SSH algorithm lists, in preference order, instead of ssh2's
 * defaults (which offer plain `zlib` before authentication and SHA-1 host key
 * signatures). Two profiles:
 *
 * - modern (auth.allowSshRsaSha1: false): nothing ssh-audit 2.5.0 flags "fail".
 * - legacy (auth.allowSshRsaSha1: true, the default): adds what JSch 0.1.55
 *   (Rundeck <= 5.9) needs and knows nothing better than: NIST-curve ECDH kex,
 *   ECDSA and ssh-rsa host keys, hmac-sha1. See docs/rundeck.md.
 *
 * The client's order decides among the algorithms both sides support, so our order
 * matters only for clients that list several of ours with equal rank.
 */
export interface AlgorithmProfile {
  algorithms: Required<Pick<Algorithms, 'kex' | 'serverHostKey' | 'cipher' | 'hmac' | 'compress'>> & {
    kex: KexAlgorithm[];
    serverHostKey: ServerHostKeyAlgorithm[];
    cipher: CipherAlgorithm[];
    hmac: MacAlgorithm[];
    compress: CompressionAlgorithm[];
  };
  /** Signature algorithms accepted for user authentication (EXT_INFO server-sig-algs). */
  serverSigAlgs: string[];
}

const KEX_MODERN = [
  // ML-KEM-768 + X25519 hybrid (post-quantum; src/ssh/kex/): OpenSSH >= 9.9 and mwiede
  // JSch 0.2.26 offer it first, and OpenSSH 10.1 warns on every connection without a
  // post-quantum kex. Rundeck secure options cross these connections: recorded today,
  // decrypted once a quantum computer exists, unless the kex is post-quantum.
  // sntrup761x25519-sha512 is not offered: no maintained JavaScript sntrup761 exists.
  'mlkem768x25519-sha256',
  // X25519 (RFC 8731): what OpenSSH >= 7.4 (before 9.9), mwiede JSch and sshj pick.
  'curve25519-sha256',
  // The same, under its pre-RFC name (older OpenSSH, libssh, PuTTY).
  'curve25519-sha256@libssh.org',
  // Fixed 4096- and 8192-bit MODP groups with SHA-512 (RFC 8268), as sshd offers;
  // for clients without X25519.
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  // 2048-bit MODP with SHA-256 (RFC 8268): sshd's last resort, kept for old clients.
  'diffie-hellman-group14-sha256',
  // Not offered: group-exchange (ssh2 may serve moduli ssh-audit flags), any *-sha1
  // kex (SHA-1), group1 (1024-bit), group15/17 (nonstandard in OpenSSH).
];

const KEX_LEGACY = [
  // JSch 0.1.55 knows no X25519: ECDH over NIST P-256/384/521 is its fastest
  // kex (ssh-audit "fail": curves suspected weak). Only while allowSshRsaSha1 is on.
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
];

const HOST_KEY_MODERN = [
  // Ed25519 first: every modern client (OpenSSH, mwiede JSch, sshj) takes it.
  'ssh-ed25519',
  // RSA host key with SHA-2 signatures (RFC 8332), for clients without Ed25519.
  'rsa-sha2-512',
  'rsa-sha2-256',
];

const HOST_KEY_LEGACY = [
  // ECDSA host keys (ssh-audit "fail": NIST curves), served only if configured.
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  // JSch 0.1.55 verifies host keys only as ssh-rsa (SHA-1) or ECDSA: offered only
  // while auth.allowSshRsaSha1 is on.
  'ssh-rsa',
];

const CIPHERS = [
  // AES-GCM first: AES-NI makes it the fastest in Node's OpenSSL; AEAD, no MAC needed.
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  // ChaCha20-Poly1305: OpenSSH's first choice; fast without AES-NI. Terrapin is
  // answered by strict kex (kex-strict-s-v00, always on in ssh2 1.17).
  'chacha20-poly1305@openssh.com',
  // AES-CTR: the only modern ciphers JSch 0.1.55 speaks.
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
  // Not offered: CBC modes, 3DES, arcfour, blowfish, cast128 (all weak or obsolete).
];

const MACS_MODERN = [
  // Encrypt-then-MAC with SHA-2 (used only with CTR ciphers; GCM/ChaCha carry their own tag).
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  // Encrypt-and-MAC SHA-2 (ssh-audit "warn"): JSch 0.1.55 knows hmac-sha2-256, no ETM.
  'hmac-sha2-256',
  'hmac-sha2-512',
  // Not offered: MD5, RIPEMD, truncated (-96) MACs.
];

const MACS_LEGACY = [
  // HMAC-SHA1 (ssh-audit "warn", not "fail"; still sound as a MAC): JSch builds
  // whose Java lacks HmacSHA256 fall back to it.
  'hmac-sha1',
];

const COMPRESSION = [
  // No compression: what OpenSSH's client asks for by default.
  'none',
  // Delayed zlib: starts only after authentication (ssh2 switches on USERAUTH_SUCCESS),
  // so an unauthenticated peer cannot make the gateway inflate anything. Plain `zlib`
  // (from the first packet) is never offered: 30 KB compressed became a 30 MB username.
  'zlib@openssh.com',
];

/** ssh2's own list of what this build (OpenSSL, optional native binding) supports. */
function supported(): { kex: string[]; hostKey: string[]; cipher: string[]; mac: string[] } {
  registerPostQuantumKex();
  return ssh2SupportedAlgorithms();
}

/** The algorithm lists for ssh2.Server, given auth.allowSshRsaSha1. */
export function algorithmProfile(allowSshRsaSha1: boolean): AlgorithmProfile {
  const have = supported();
  const only = (list: string[], known: string[]) => list.filter((a) => known.includes(a));
  const kex = allowSshRsaSha1 ? [...KEX_MODERN.slice(0, 3), ...KEX_LEGACY, ...KEX_MODERN.slice(3)] : KEX_MODERN;
  const serverHostKey = allowSshRsaSha1 ? [...HOST_KEY_MODERN, ...HOST_KEY_LEGACY] : HOST_KEY_MODERN;
  const hmac = allowSshRsaSha1 ? [...MACS_MODERN, ...MACS_LEGACY] : MACS_MODERN;
  return {
    algorithms: {
      kex: only(kex, have.kex) as KexAlgorithm[],
      serverHostKey: only(serverHostKey, have.hostKey) as ServerHostKeyAlgorithm[],
      cipher: only(CIPHERS, have.cipher) as CipherAlgorithm[],
      hmac: only(hmac, have.mac) as MacAlgorithm[],
      compress: COMPRESSION as CompressionAlgorithm[],
    },
    // User-auth signatures execgate verifies: DSA never; ssh-rsa (SHA-1) only while allowed.
    serverSigAlgs: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', ...(allowSshRsaSha1 ? ['ssh-rsa'] : [])],
  };
}

/** Host key types ssh2 will serve under a profile (others in hostKeys are skipped). */
export function servedHostKeyTypes(profile: AlgorithmProfile): Set<string> {
  const types = new Set<string>();
  for (const a of profile.algorithms.serverHostKey) types.add(a.startsWith('rsa-sha2-') ? 'ssh-rsa' : a);
  return types;
}

/** What an algorithm is negotiated for; `user-auth` is the client's signature on USERAUTH_REQUEST. */
export type AlgorithmKind = 'kex' | 'host-key' | 'cipher' | 'mac' | 'user-auth';

export type AlgorithmsByKind = Record<AlgorithmKind, readonly string[]>;

/**
 * The algorithms algorithm posture (src/ssh/algorithmPosture.ts) watches, in two tiers:
 *
 * - legacy: exactly what auth.allowSshRsaSha1: false stops offering (derived from the
 *   two profiles, so it follows any change to the lists above): NIST-curve ECDH kex,
 *   ECDSA and ssh-rsa (SHA-1) host keys, hmac-sha1, and ssh-rsa (SHA-1) user
 *   signatures. When none of these was negotiated for a while, the switch is safe.
 * - compat: offered in both profiles, yet chosen only by clients that know nothing
 *   better: AES-CTR (clients without AES-GCM/ChaCha20-Poly1305) and encrypt-and-MAC
 *   SHA-2 (clients without ETM). JSch 0.1.55 negotiates aes128-ctr; turning
 *   auth.allowSshRsaSha1 off does not remove these.
 */
export function algorithmTiers(): { legacy: AlgorithmsByKind; compat: AlgorithmsByKind } {
  const on = algorithmProfile(true);
  const off = algorithmProfile(false);
  const minus = (a: readonly string[], b: readonly string[]) => a.filter((x) => !b.includes(x));
  return {
    legacy: {
      kex: minus(on.algorithms.kex, off.algorithms.kex),
      'host-key': minus(on.algorithms.serverHostKey, off.algorithms.serverHostKey),
      cipher: minus(on.algorithms.cipher, off.algorithms.cipher),
      mac: minus(on.algorithms.hmac, off.algorithms.hmac),
      'user-auth': minus(on.serverSigAlgs, off.serverSigAlgs),
    },
    compat: {
      kex: [],
      'host-key': [],
      cipher: off.algorithms.cipher.filter((c) => c.endsWith('-ctr')),
      mac: off.algorithms.hmac.filter((m) => !m.includes('-etm@')),
      'user-auth': [],
    },
  };
}
