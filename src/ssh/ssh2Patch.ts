import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { errors } from '../errors.js';

/** Each fix in patches/ssh2+*.patch, found by its comment, and what breaks without it. */
const FIXES = [
  { file: 'ssh2/lib/server.js', marker: 'execgate: resume stdout and stderr', lacks: 'flow-control fix (jobs writing stdout and stderr at once would hang)' },
  { file: 'ssh2/lib/keygen.js', marker: 'execgate: drop only the BIT STRING', lacks: 'ed25519 keygen fix (1 generated key in 256 would be unreadable)' },
];

/**
 * patch-package applies execgate's ssh2 fixes at install time. Refuse to run
 * without them rather than hang jobs or write broken keys at random.
 */
export function assertSsh2Patched(): void {
  const require = createRequire(import.meta.url);
  for (const fix of FIXES) {
    const file = require.resolve(fix.file);
    if (!readFileSync(file, 'utf8').includes(fix.marker)) throw errors.ssh2PatchMissing(file, fix.lacks);
  }
}
