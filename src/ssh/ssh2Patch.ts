import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { errors } from '../errors.js';

/** Each fix in patches/ssh2+*.patch, found by its comment, and what breaks without it. */
const FIXES = [
  { file: 'ssh2/lib/server.js', marker: 'execgate: resume stdout and stderr', lacks: 'flow-control fix (jobs writing stdout and stderr at once would hang)' },
  { file: 'ssh2/lib/keygen.js', marker: 'execgate: drop only the BIT STRING', lacks: 'ed25519 keygen fix (1 generated key in 256 would be unreadable)' },
  { file: 'ssh2/lib/protocol/crypto.js', marker: 'execgate: a per-connection inbound packet limit', lacks: 'inbound packet limit (long command lines would close the connection silently)' },
  { file: 'ssh2/lib/protocol/kex.js', marker: "execgate: keep the connection's inbound packet limit", lacks: 'inbound packet limit across rekeys' },
  { file: 'ssh2/lib/protocol/zlib.js', marker: 'execgate: cap the inflated size', lacks: 'inflated packet cap (a compressed packet could inflate to tens of MB)' },
  { file: 'ssh2/lib/protocol/Protocol.js', marker: "execgate: upstream's list lacked the comma", lacks: 'server-sig-algs fix (clients would not see rsa-sha2-512; ssh-dss advertised)' },
  { file: 'ssh2/lib/server.js', marker: 'execgate: say why instead of closing silently', lacks: 'packet-too-large disconnect message and per-connection packet limit' },
  { file: 'ssh2/lib/server.js', marker: 'execgate: read no further', lacks: 'parse-error stop (a bad packet length would buffer up to 4 GiB)' },
  { file: 'ssh2/lib/server.js', marker: 'execgate: an explicit serverHostKey list without ssh-rsa', lacks: 'host key algorithm list (ssh-rsa host key signatures would always be offered)' },
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
