import type { Account } from './account.js';

/** Compiles allow-list patterns such as "RD_*" or "LANG" into one matcher. */
export function envAllowList(patterns: string[]): (name: string) => boolean {
  const regexes = patterns.map(
    (p) => new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$'),
  );
  return (name) => regexes.some((r) => r.test(name));
}

export interface CommandIdentity {
  node: string;
  fencingToken: bigint | null;
  execId: string;
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
}

/**
 * A clean environment: nothing of the gateway's own environment leaks into a command
 * except LANG; the client's variables only when allow-listed.
 */
export function buildEnvironment(
  account: Account,
  path: string,
  clientEnv: ReadonlyMap<string, string>,
  identity: CommandIdentity,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: path,
    HOME: account.home,
    USER: account.name,
    LOGNAME: account.name,
    SHELL: account.shell,
    LANG: process.env.LANG || 'C.UTF-8',
  };
  for (const [name, value] of clientEnv) env[name] = value;
  env.SSH_CONNECTION = `${identity.clientAddress} ${identity.clientPort} ${identity.serverAddress} ${identity.serverPort}`;
  env.EXECGATE_NODE = identity.node;
  env.EXECGATE_FENCING_TOKEN = identity.fencingToken === null ? '' : identity.fencingToken.toString();
  env.EXECGATE_EXEC_ID = identity.execId;
  return env;
}
