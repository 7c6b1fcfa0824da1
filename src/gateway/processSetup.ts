import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../log.js';
import { assertSsh2Patched } from '../ssh/ssh2Patch.js';
import { describeCryptoBackend, sshCryptoBackend, type CryptoBackend } from '../ssh/cryptoBackend.js';
import { closeInheritedFds } from '../exec/inheritedFds.js';
import { cgroupSupport } from '../exec/cgroup.js';
import { setpriv } from '../exec/launch.js';

/** What the process checks and says before the gateway builds anything; returns the gateway's logger and ssh2's crypto backend. */
export function prepareProcess(config: Config, node: string): { log: Logger; ssh2Crypto: CryptoBackend['backend'] } {
  assertSsh2Patched();
  const log = createLogger(config.log.level, node);
  const inheritedFds = closeInheritedFds();
  if (inheritedFds.length > 0) log.info({ fds: inheritedFds }, 'closed file descriptors inherited from the parent, so no command inherits them');
  cgroupSupport(); // says at start whether leftovers of commands can be found and killed
  // Which crypto ssh2 uses: its native binding, or (silently, in ssh2) its slower JavaScript fallback.
  const crypto = sshCryptoBackend();
  if (crypto.backend === 'native') log.info({ ssh2Crypto: crypto.backend, binding: crypto.binding }, describeCryptoBackend(crypto));
  else log.warn({ ssh2Crypto: crypto.backend, binding: crypto.binding, error: crypto.error, fix: crypto.fix }, describeCryptoBackend(crypto));
  if (process.getuid?.() === 0) setpriv(); // a root gateway switches users; fail now if it cannot
  return { log, ssh2Crypto: crypto.backend };
}
