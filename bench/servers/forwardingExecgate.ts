import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchKeys } from '../keys.js';
import type { LoginUser } from './loginUser.js';
import type { BenchServer } from './types.js';
import { ROOT, startExecgate } from './execgate.js';

/**
 * An ES module preload (`node --import`) that turns an ordinary `execgate serve` into a
 * node forwarding every new connection, the way a draining node will: it installs an
 * SshServer forwardTo that reads its target, JSON {host, port, name}, from `targetFile`
 * on every connection (an empty file: serve here). It logs one JSON line per forwarded
 * connection ("preload: forwarding", with the real client) and every change of
 * openVia(`via`) ("preload: openVia"), for tests to read.
 * Written at run time: `npm run build` compiles bench/*.ts only, and the preload must
 * import the very server module the CLI loads (same URL, same class).
 */
export function writeForwardingPreload(dir: string, targetFile: string, via: string, distRoot: string): string {
  const server = pathToFileURL(resolve(distRoot, 'src/ssh/server.js')).href;
  const path = join(dir, 'forward-preload.mjs');
  writeFileSync(
    path,
    `// execgate test/bench preload: forward every new connection to the target in ${targetFile}
import { readFileSync } from 'node:fs';
import { SshServer } from ${JSON.stringify(server)};
const listen = SshServer.prototype.listen;
let installed = false;
SshServer.prototype.listen = function (...args) {
  if (!installed) {
    installed = true;
    this.setForwardTo((socket, peer) => {
      const text = readFileSync(${JSON.stringify(targetFile)}, 'utf8').trim();
      if (!text) return null;
      process.stderr.write(JSON.stringify({ msg: 'preload: forwarding', client: peer.address + ':' + peer.port }) + '\\n');
      return JSON.parse(text);
    });
    this.onOpenViaChange(${JSON.stringify(via)}, (count) => process.stderr.write(JSON.stringify({ msg: 'preload: openVia', count }) + '\\n'));
  }
  return listen.apply(this, args);
};
`,
  );
  writeFileSync(targetFile, '', { flag: 'a' });
  return path;
}

/** A gateway and the one that forwards every connection to it. */
export interface ForwardingPair {
  /** Serves commands; trusts the forwarder's source address for PROXY v2. */
  target: BenchServer;
  /** Forwards every new connection to `target` (its CPU is the forwarding cost). */
  forwarder: BenchServer;
}

/** The forwarder connects from this loopback address, which the target trusts for PROXY v2. */
export const FORWARDER_SOURCE = '127.0.0.2';

/**
 * Two more execgates: a target that accepts PROXY v2 from FORWARDER_SOURCE, and a
 * forwarder (the preload above) sending it every connection from that address.
 */
export async function startForwardingPair(dir: string, keys: BenchKeys, user: LoginUser): Promise<ForwardingPair> {
  mkdirSync(join(dir, 'target'), { recursive: true });
  mkdirSync(join(dir, 'forwarder'), { recursive: true });
  const target = await startExecgate(join(dir, 'target'), keys, user, { config: { proxyProtocol: { trustedProxies: [FORWARDER_SOURCE] } } });
  const targetFile = join(dir, 'forwarder', 'forward-to.json');
  writeFileSync(targetFile, JSON.stringify({ host: '127.0.0.1', port: target.port, name: 'target', localAddress: FORWARDER_SOURCE }));
  const preload = writeForwardingPreload(join(dir, 'forwarder'), targetFile, '127.0.0.1', join(ROOT, 'dist'));
  try {
    const forwarder = await startExecgate(join(dir, 'forwarder'), keys, user, { nodeArgs: ['--import', preload] });
    return { target, forwarder };
  } catch (err) {
    await target.stop();
    throw err;
  }
}
