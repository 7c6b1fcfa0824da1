import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { errors } from '../errors.js';

const MARKER = 'execgate: resume stdout and stderr';

/**
 * ssh2 1.17 hangs a channel whose stdout and stderr both wait for window; patches/
 * fixes it at install time (patch-package). Refuse to run without the fix rather
 * than hang jobs at random.
 */
export function assertSsh2Patched(): void {
  const require = createRequire(import.meta.url);
  const file = require.resolve('ssh2/lib/server.js');
  if (!readFileSync(file, 'utf8').includes(MARKER)) throw errors.ssh2PatchMissing(file);
}
