import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateHostKeys, writeKeyPair } from '../ssh/hostKeys.js';
import type { ConfigInput } from '../config/schema.js';

export interface EmbeddedSetup {
  stateDir: string;
  config: ConfigInput;
  clientKey: string;
  knownHosts: string;
}

/**
 * The zero-configuration single node of `npm start`: a state directory with host
 * keys, a client key pair already in authorized_keys, and a known_hosts file, so
 * the printed ssh command works at once.
 */
export function prepareEmbeddedSetup(stateDir: string, host: string, port: number, httpPort = 9422): EmbeddedSetup {
  const dir = resolve(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKeys = generateHostKeys(join(dir, 'host-keys'));
  const client = writeKeyPair(dir, 'client_ed25519', 'ed25519', 'execgate quickstart client');
  const authorizedKeys = join(dir, 'authorized_keys');
  if (!existsSync(authorizedKeys)) {
    writeFileSync(authorizedKeys, readFileSync(client.publicPath, 'utf8'), { mode: 0o600 });
  }
  const knownHosts = join(dir, 'known_hosts');
  writeKnownHosts(knownHosts, hostKeys, host, port);
  return {
    stateDir: dir,
    clientKey: client.privatePath,
    knownHosts,
    config: {
      listen: { host, port },
      http: { host: '127.0.0.1', port: httpPort },
      hostKeys,
      authorizedKeys,
      audit: { path: join(dir, 'audit.jsonl') },
    },
  };
}

/** known_hosts naming this gateway's host keys at host:port (rewritten once a port 0 is bound). */
export function writeKnownHosts(path: string, hostKeys: readonly string[], host: string, port: number): void {
  const hostPattern = port === 22 ? host : `[${host}]:${port}`;
  const lines = hostKeys.map((k) => {
    const [type, b64] = readFileSync(`${k}.pub`, 'utf8').trim().split(/\s+/);
    return `${hostPattern} ${type} ${b64}`;
  });
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o644 });
}
