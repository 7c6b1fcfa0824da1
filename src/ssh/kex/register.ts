import { createRequire } from 'node:module';
import { clientStart, MLKEM768X25519_SHA256, serverRespond } from './mlkem768x25519.js';

interface Ssh2KexModule {
  registerHybridKex(name: string, impl: { hashName: string; serverRespond: typeof serverRespond; clientStart: typeof clientStart }): void;
}

let registered = false;

/**
 * Teaches ssh2 (server and client) the post-quantum hybrid key exchange through the
 * hook execgate's ssh2 patch adds. Idempotent; must run before an algorithm list
 * naming it is handed to ssh2, which validates names against its supported list.
 */
export function registerPostQuantumKex(): void {
  if (registered) return;
  const require = createRequire(import.meta.url);
  const kex = require('ssh2/lib/protocol/kex.js') as Partial<Ssh2KexModule>;
  if (typeof kex.registerHybridKex !== 'function') throw new Error("ssh2 lacks execgate's hybrid kex hook: patches/ssh2+1.17.0.patch was not applied (run npm ci)");
  kex.registerHybridKex(MLKEM768X25519_SHA256, { hashName: 'sha256', serverRespond, clientStart });
  registered = true;
}
