import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_URL } from '../http/client.js';
import { isLoopbackAddress } from '../http/access.js';
import { parseTokenText } from '../http/token.js';
import { HTTP_TOKEN_FILE } from '../bootstrap/stateDir.js';
import { loadClusterFile, nodeConfigFromCluster } from '../config/clusterLoad.js';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { errors } from '../errors.js';
import { stringFlag, type Flags, type VerbOptions } from './common.js';

/** The options target() reads: status, drain and undrain take them. */
export const TARGET_OPTIONS = {
  url: { type: 'string' },
  config: { type: 'string', short: 'c' },
  cluster: { type: 'string' },
  node: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  'state-dir': { type: 'string' },
} as const satisfies VerbOptions;

/** Where the CLI verbs (status, drain, undrain) send their requests, and with which token. */
export interface Target {
  url: string;
  token: string | undefined;
  /** Where the token came from, or where the CLI looked for one: for messages. */
  tokenNote: string;
}

const MAX_TOKEN_FILE_BYTES = 4096;

/** A token file as the CLI reads it: the token, or why there is none (never thrown). */
function readTokenFile(path: string): { token: string } | { problem: string } {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_TOKEN_FILE_BYTES) return { problem: `${buf.length} bytes, not a token file` };
    text = buf.toString('utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { problem: e.code === 'EACCES' ? 'EACCES (not readable by this account: run as its owner or root)' : (e.code ?? e.message) };
  }
  const token = parseTokenText(text);
  return token === null ? { problem: 'holds no token (one line of at least 16 printable characters)' } : { token };
}

/** The URL of a single-node config's HTTP listener, seen from the same host. */
function urlOfConfig(http: Config['http'], source: string): string {
  if (!http.enabled) throw errors.httpDisabled(source);
  if (http.port === 0) throw errors.httpPortPickedAtStart(source);
  const host = http.host === '0.0.0.0' ? '127.0.0.1' : http.host === '::' ? '::1' : http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${http.port}`;
}

function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || isLoopbackAddress(host);
  } catch {
    return false;
  }
}

/**
 * Finds the gateway and its token. The token comes from, in this order: --token,
 * --token-file, EXECGATE_HTTP_TOKEN, the http.token/http.tokenFile of the --cluster or
 * --config file, else the embedded defaults' state directory (--state-dir,
 * EXECGATE_STATE_DIR or ./.execgate: its http-token, sent only to a loopback URL
 * unless --state-dir is given).
 */
export function target(flags: Flags, env: NodeJS.ProcessEnv = process.env): Target {
  let url = stringFlag(flags, 'url');
  const clusterPath = stringFlag(flags, 'cluster');
  const configPath = stringFlag(flags, 'config');
  if (clusterPath !== undefined && configPath !== undefined) throw errors.clusterOrConfig();

  // The file the verb is pointed at: its HTTP address (unless --url) and its token settings.
  let http: Pick<Config['http'], 'token' | 'tokenFile'> | null = null;
  let httpSource = '';
  if (clusterPath !== undefined) {
    // On a cluster node the HTTP surface listens on the node's own address.
    const cluster = loadClusterFile(clusterPath);
    const name = stringFlag(flags, 'node') ?? hostname();
    const node = cluster.nodes.find((n) => n.name === name);
    if (!node)
      throw errors.clusterNodeUnknown(
        name,
        clusterPath,
        cluster.nodes.map((n) => n.name),
        'give --node NAME',
      );
    url ??= `http://${node.address}:${node.httpPort}`;
    http = nodeConfigFromCluster(cluster, name, clusterPath).http;
    httpSource = `${clusterPath} (gateway.http)`;
  } else if (configPath !== undefined) {
    const config = loadConfigFile(configPath);
    url ??= urlOfConfig(config.http, configPath);
    http = config.http;
    httpSource = `${configPath} (http)`;
  }
  url ??= DEFAULT_URL;

  const flagToken = stringFlag(flags, 'token');
  if (flagToken !== undefined) return { url, token: flagToken, tokenNote: 'sent the token given with --token' };
  const tokenFile = stringFlag(flags, 'token-file');
  if (tokenFile !== undefined) {
    const r = readTokenFile(tokenFile);
    if ('problem' in r) throw errors.tokenFileFlag(tokenFile, r.problem);
    return { url, token: r.token, tokenNote: `sent the token from --token-file ${tokenFile}` };
  }
  if (env.EXECGATE_HTTP_TOKEN) return { url, token: env.EXECGATE_HTTP_TOKEN, tokenNote: 'sent the token from EXECGATE_HTTP_TOKEN' };

  const tried: string[] = ['--token, --token-file and EXECGATE_HTTP_TOKEN (none given)'];
  if (http !== null) {
    if (http.token !== undefined) return { url, token: http.token, tokenNote: `sent http.token from ${httpSource}` };
    if (http.tokenFile !== undefined) {
      const r = readTokenFile(http.tokenFile);
      if ('token' in r) return { url, token: r.token, tokenNote: `sent the token from ${http.tokenFile} (http.tokenFile of ${httpSource})` };
      tried.push(`${http.tokenFile} (http.tokenFile of ${httpSource}): ${r.problem}`);
    } else {
      tried.push(`${httpSource}: sets neither http.token nor http.tokenFile`);
    }
  } else {
    const explicitDir = stringFlag(flags, 'state-dir');
    const dir = explicitDir ?? env.EXECGATE_STATE_DIR ?? '.execgate';
    const file = join(resolve(dir), HTTP_TOKEN_FILE);
    if (explicitDir === undefined && !isLoopbackUrl(url)) {
      tried.push(`${file} not sent: it belongs to a gateway on this host and ${url} is not loopback`);
    } else {
      const r = readTokenFile(file);
      if ('token' in r) return { url, token: r.token, tokenNote: `sent the token from ${file}` };
      tried.push(`${file}: ${r.problem}`);
    }
  }
  return { url, token: undefined, tokenNote: `sent no token; tried ${tried.join('; ')}` };
}
