import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchKeys } from '../keys.js';
import type { LoginUser } from './loginUser.js';
import type { BenchServer } from './types.js';
import { execgateLog, startExecgate } from './execgate.js';

/**
 * A CommonJS preload (`node --require`) that makes loading any native addon whose path
 * ends in sshcrypto.node throw, the way a binding built for another Node ABI does
 * (dlopen fails in Module._extensions['.node']). ssh2 then falls back to its JavaScript
 * crypto, and the gateway's own probe, which loads the file again, sees the same error.
 * Written at run time next to the second gateway's config: `npm run build` compiles
 * bench/*.ts only, so a .cjs shipped in bench/ would not be found from dist/bench.
 */
const PRELOAD = `'use strict';
// execgate bench (jscrypto section): ssh2's native binding "fails to load".
const Module = require('node:module');
const loadNative = Module._extensions['.node'];
Module._extensions['.node'] = function (module, filename) {
  if (filename.endsWith('sshcrypto.node')) {
    const err = new Error('The module \\'' + filename + '\\' was compiled against a different Node.js version (simulated by the execgate bench: its jscrypto section measures ssh2\\'s JavaScript crypto fallback).');
    err.code = 'ERR_DLOPEN_FAILED';
    throw err;
  }
  return loadNative.call(this, module, filename);
};
`;

/** What the gateway logs at start-up when ssh2 uses its JavaScript fallback (src/gateway.ts). */
const FALLBACK_LOGGED = /"ssh2Crypto":"javascript"/;
const NATIVE_LOGGED = /"ssh2Crypto":"native"/;

/**
 * A second execgate, same config in its own dir, whose ssh2 cannot load its native crypto.
 * Throws unless the gateway's start-up log says it runs on the JavaScript fallback.
 */
export async function startJsCryptoExecgate(dir: string, keys: BenchKeys, user: LoginUser): Promise<BenchServer> {
  mkdirSync(dir, { recursive: true });
  const preload = join(dir, 'no-ssh2-native-crypto.cjs');
  writeFileSync(preload, PRELOAD);
  const server = await startExecgate(dir, keys, user, { nodeArgs: ['--require', preload] });
  // the crypto line is logged before the listen line that startExecgate waited for
  const log = readFileSync(execgateLog(dir), 'utf8');
  if (!FALLBACK_LOGGED.test(log)) {
    await server.stop();
    const saw = NATIVE_LOGGED.test(log) ? 'it logged the native binding: the preload did not take' : 'no ssh2Crypto line at all';
    throw new Error(`the execgate with ${preload} did not log the JavaScript crypto warning (${saw}); log ${execgateLog(dir)}:\n${log.slice(-1500)}`);
  }
  return server;
}

/** The warning line the gateway logged, for the bench log. */
export function fallbackWarning(dir: string): string {
  const line =
    readFileSync(execgateLog(dir), 'utf8')
      .split('\n')
      .find((l) => FALLBACK_LOGGED.test(l)) ?? '';
  try {
    return (JSON.parse(line) as { msg?: string }).msg ?? line;
  } catch {
    return line;
  }
}
