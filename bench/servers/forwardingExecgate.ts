import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

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
