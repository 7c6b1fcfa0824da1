import type { Account } from '../account/account.js';
import { errors } from '../errors.js';

/**
 * Variables that change how a program is loaded or interpreted rather than what it
 * works on (glibc's list of variables it drops for setuid programs, plus shells' and
 * interpreters' start-up hooks). A client may set them only when the operator says so.
 */
const UNSAFE_ENV = [
  /^LD_/,
  /^PATH$/,
  /^GCONV_PATH$/,
  /^GETCONF_DIR$/,
  /^GLIBC_TUNABLES$/,
  /^HOSTALIASES$/,
  /^LOCALDOMAIN$/,
  /^LOCPATH$/,
  /^MALLOC_/,
  /^NIS_PATH$/,
  /^NLSPATH$/,
  /^RESOLV_HOST_CONF$/,
  /^RES_OPTIONS$/,
  /^TMPDIR$/,
  /^TZDIR$/,
  /^IFS$/,
  /^ENV$/,
  /^BASH_ENV$/,
  /^SHELLOPTS$/,
  /^BASHOPTS$/,
  /^PS4$/,
  /^CDPATH$/,
  /^BASH_FUNC_/,
  /^PYTHON(PATH|STARTUP|HOME)$/,
  /^PERL5(LIB|OPT)$/,
  /^PERLLIB$/,
  /^RUBY(LIB|OPT)$/,
  /^NODE_OPTIONS$/,
  /^NODE_PATH$/,
  /^JAVA_TOOL_OPTIONS$/,
  /^_JAVA_OPTIONS$/,
  /^JDK_JAVA_OPTIONS$/,
];
/** Concrete names to test allow-list patterns against (a pattern is a glob, not a name). */
const UNSAFE_SAMPLES = [
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'LD_AUDIT',
  'PATH',
  'GCONV_PATH',
  'GETCONF_DIR',
  'GLIBC_TUNABLES',
  'HOSTALIASES',
  'LOCALDOMAIN',
  'LOCPATH',
  'MALLOC_TRACE',
  'NIS_PATH',
  'NLSPATH',
  'RESOLV_HOST_CONF',
  'RES_OPTIONS',
  'TMPDIR',
  'TZDIR',
  'IFS',
  'ENV',
  'BASH_ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'CDPATH',
  'BASH_FUNC_x%%',
  'PYTHONPATH',
  'PYTHONSTARTUP',
  'PYTHONHOME',
  'PERL5LIB',
  'PERL5OPT',
  'PERLLIB',
  'RUBYLIB',
  'RUBYOPT',
  'NODE_OPTIONS',
  'NODE_PATH',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
];

export const isUnsafeEnvName = (name: string) => UNSAFE_ENV.some((r) => r.test(name));

function globToRegExp(pattern: string): RegExp {
  return new RegExp('^' + pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
}

/**
 * Compiles allow-list patterns such as "RD_*" or "LANG" into one matcher. A pattern
 * that admits an unsafe name is refused unless allowUnsafe is set; without it, unsafe
 * names never pass even a pattern that did not foresee them.
 */
export function envAllowList(patterns: string[], allowUnsafe = false): (name: string) => boolean {
  const regexes = patterns.map((p) => {
    const r = globToRegExp(p);
    const unsafe = UNSAFE_SAMPLES.filter((n) => r.test(n));
    if (unsafe.length > 0 && !allowUnsafe) throw errors.envAllowUnsafe(p, unsafe);
    return r;
  });
  return (name) => regexes.some((r) => r.test(name)) && (allowUnsafe || !isUnsafeEnvName(name));
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
export function buildEnvironment(account: Account, path: string, clientEnv: ReadonlyMap<string, string>, identity: CommandIdentity): Record<string, string> {
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
