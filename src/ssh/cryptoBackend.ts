import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ssh2CryptoBindingLoaded } from './ssh2Internals.js';

/**
 * Which crypto ssh2 uses for its ciphers and MACs: its native binding
 * (lib/protocol/crypto/build/Release/sshcrypto.node, built against one Node ABI at install
 * time) or its JavaScript fallback. ssh2 swallows the load error and falls back silently;
 * the fallback works but is slower (ChaCha20-Poly1305 through WebAssembly, AES-GCM without
 * the native fast path), and it usually means node_modules were built for another Node
 * (copied from another host, or Node upgraded underneath them).
 */
export interface CryptoBackend {
  backend: 'native' | 'javascript';
  /** The binding's path (whether or not it exists). */
  binding: string;
  /** Node's version and module ABI (process.versions.modules) this process runs. */
  node: string;
  abi: string;
  /** Why the binding did not load (javascript only). */
  error?: string;
  /** What to do about it (javascript only). */
  fix?: string;
}

export const SSH2_BINDING = 'lib/protocol/crypto/build/Release/sshcrypto.node';

export function cryptoFix(installDir?: string): string {
  const where = installDir ? ` in ${installDir}` : '';
  return `rebuild the native modules against this Node: run "npm rebuild ssh2"${where} (needs a compiler and Node's headers), or reinstall the execgate package (apt-get install --reinstall execgate), whose bundled Node matches its modules`;
}

let cached: CryptoBackend | undefined;

/** Asks ssh2 (loaded the way the gateway loads it) which crypto it uses, and why (once per process). */
export function sshCryptoBackend(): CryptoBackend {
  return (cached ??= probe());
}

function probe(): CryptoBackend {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('ssh2/package.json');
  const binding = join(dirname(pkg), SSH2_BINDING);
  const base = { binding, node: process.version, abi: process.versions.modules };
  if (ssh2CryptoBindingLoaded()) return { backend: 'native', ...base };
  // ssh2 swallowed the error: load the same file again to learn it (a failed load is not cached).
  let error: string;
  if (!existsSync(binding)) {
    error = `${binding} does not exist (ssh2's install script did not build it: no compiler, or installed with --ignore-scripts)`;
  } else {
    try {
      require(binding);
      error = 'ssh2 could not load it at first, but it loads now';
    } catch (err) {
      error = firstLine((err as Error).message);
    }
  }
  const installDir = dirname(dirname(dirname(pkg)));
  return { backend: 'javascript', ...base, error, fix: cryptoFix(installDir) };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/**
 * What the fallback costs, as `npm run bench` measured it (docs/BENCHMARKS.md): ssh2 then
 * uses Node's OpenSSL ciphers per packet and Poly1305 in WebAssembly.
 */
export const FALLBACK_COST = "JavaScript fallback (Node's OpenSSL ciphers, Poly1305 in WebAssembly: up to 1.5x the CPU per streamed GiB with chacha20-poly1305, about the same with aes128-gcm)";

/** One log line: info for native, warn (with the fix) for the fallback. */
export function describeCryptoBackend(b: CryptoBackend): string {
  if (b.backend === 'native') return `ssh2 crypto: native binding loaded (${b.binding}, node ${b.node}, ABI ${b.abi})`;
  return `ssh2 crypto: ${FALLBACK_COST}: the native binding ${b.binding} did not load under node ${b.node} (ABI ${b.abi}): ${b.error}. Fix: ${b.fix}`;
}
