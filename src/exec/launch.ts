import { existsSync } from 'node:fs';
import type { Account } from '../account/account.js';
import { errors } from '../errors.js';

/** What is handed to spawn: the program, its argv and its environment. */
export interface LaunchPlan {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/** The fixed environment of every process that runs as root before the privilege drop. */
const PRIVILEGED_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };

/** Where util-linux puts setpriv on Debian and elsewhere; never looked up through a PATH. */
const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv'];

const ENV_PREFIX = 'EXECGATE_ENV_';
const ENV_NAMES = 'EXECGATE_ENV_NAMES';

/**
 * Runs as the target account, right after the drop: turns every EXECGATE_ENV_<NAME>
 * back into NAME, then execs the command. Before the drop the client's variables only
 * exist under that prefix, so no loader (LD_PRELOAD), shell (ENV, IFS) or PATH lookup
 * running as root ever sees a name the client chose.
 */
const RESTORE_ENV = `for n in $${ENV_NAMES}; do eval "export $n=\\"\\$${ENV_PREFIX}$n\\"; unset ${ENV_PREFIX}$n"; done; unset ${ENV_NAMES}; exec "$@"`;

/** A name a POSIX shell can export (others cannot reach a command through a shell anyway). */
export const isPortableEnvName = (name: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);

let setprivPath: string | null | undefined;

/** The absolute path of setpriv, or an error naming the package to install. */
export function setpriv(): string {
  if (setprivPath === undefined) setprivPath = SETPRIV_CANDIDATES.find((p) => existsSync(p)) ?? null;
  if (setprivPath === null) throw errors.setprivMissing(SETPRIV_CANDIDATES);
  return setprivPath;
}

/**
 * The launch of one command. Without a user switch the command gets its environment
 * directly (every process in the chain already runs as the command's own account).
 * With one, root runs only absolute paths with a fixed environment: setpriv drops to
 * the account, and a shell running as the account restores the command's environment.
 */
export function planLaunch(argv: readonly string[], env: Record<string, string>, switchTo: Account | null): LaunchPlan {
  if (!switchTo) return { file: argv[0]!, args: argv.slice(1), env };
  const names = Object.keys(env).filter(isPortableEnvName);
  const carried: Record<string, string> = { ...PRIVILEGED_ENV, [ENV_NAMES]: names.join(' ') };
  for (const name of names) carried[ENV_PREFIX + name] = env[name]!;
  const args = [`--reuid=${switchTo.uid}`, `--regid=${switchTo.gid}`, '--init-groups', '--', '/bin/sh', '-c', RESTORE_ENV, 'execgate-env', ...argv];
  return { file: setpriv(), args, env: carried };
}
