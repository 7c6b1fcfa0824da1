import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { generateHostKeys, writeKeyPair } from '../ssh/hostKeys.js';
import type { ConfigInput } from '../config/schema.js';
import { generateToken } from '../http/token.js';

/** The HTTP bearer token of the embedded defaults, in the state directory. */
export const HTTP_TOKEN_FILE = 'http-token';

export interface EmbeddedSetup {
  stateDir: string;
  config: ConfigInput;
  clientKey: string;
  knownHosts: string;
  /** The HTTP bearer token file (mode 0600) that execgate status/drain/undrain read. */
  httpTokenFile: string;
  /** Started as root: the one stderr line saying that runAs.permitRoot was set, why, and how to avoid it. */
  rootNotice: string | null;
}

/**
 * The zero-configuration single node of `npm start`: a state directory with host
 * keys, a client key pair already in authorized_keys, and a known_hosts file, so
 * the printed ssh command works at once. The HTTP surface requires a token generated
 * into the state directory (mode 0600): only its owner (and root) can drain the node
 * or read command lines, not every local account.
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
  const httpTokenFile = join(dir, HTTP_TOKEN_FILE);
  writeTokenFileOnce(httpTokenFile);
  // As root the printed ssh line logs in as root: permit exactly that username, as itself.
  const me = userInfo();
  const asRoot = me.uid === 0;
  return {
    stateDir: dir,
    clientKey: client.privatePath,
    knownHosts,
    httpTokenFile,
    rootNotice: asRoot
      ? `execgate: started as root, so the embedded defaults set runAs.permitRoot: true and let the SSH user ${me.username} in as ${me.username} (uid 0) for the ssh line below; ` +
        'to run commands without root, start execgate as an unprivileged user, or use --config with runAs mapping usernames to unprivileged accounts\n'
      : null,
    config: {
      listen: { host, port },
      http: { host: '127.0.0.1', port: httpPort, tokenFile: httpTokenFile },
      hostKeys,
      authorizedKeys,
      audit: { path: join(dir, 'audit.jsonl') },
      ...(asRoot ? { runAs: { accounts: { [me.username]: me.username }, permitRoot: true } } : {}),
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

/** Creates a token file (mode 0600) unless one exists; an existing one is kept and checked when read. */
export function writeTokenFileOnce(path: string): void {
  try {
    writeFileSync(path, `${generateToken()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
