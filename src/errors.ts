/**
 * The catalogue of operator-facing errors. Each message says what is wrong and what
 * to do about it; the code is stable so logs and docs can refer to it.
 */
export class ExecgateError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ExecgateError';
  }
}

export const errors = {
  configUnreadable: (path: string, reason: string) =>
    new ExecgateError('EG_CONFIG_UNREADABLE', `cannot read config ${path}: ${reason}`),
  configSyntax: (path: string, reason: string) =>
    new ExecgateError('EG_CONFIG_SYNTAX', `config ${path} is not valid YAML: ${reason}`),
  configInvalid: (path: string, problems: string[]) =>
    new ExecgateError(
      'EG_CONFIG_INVALID',
      `config ${path} is invalid: ${problems.join('; ')}`,
    ),
  hostKeyMissing: (path: string) =>
    new ExecgateError(
      'EG_HOSTKEY_MISSING',
      `host key ${path} does not exist: create it with "execgate keygen --dir <dir>" and list it under hostKeys`,
    ),
  hostKeyUnreadable: (path: string, reason: string) =>
    new ExecgateError('EG_HOSTKEY_UNREADABLE', `cannot read host key ${path}: ${reason}`),
  hostKeyInvalid: (path: string, reason: string) =>
    new ExecgateError(
      'EG_HOSTKEY_INVALID',
      `host key ${path} is not a usable private key: ${reason}; check it with "ssh-keygen -y -f ${path}", or replace it with "execgate keygen --dir <dir> --force" (and copy the new keys to every node)`,
    ),
  hostKeyTooOpen: (path: string, mode: number) =>
    new ExecgateError(
      'EG_HOSTKEY_PERMISSIONS',
      `host key ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}, readable by group or others: run "chmod 600 ${path}"`,
    ),
  hostKeyNoLegacyType: () =>
    new ExecgateError(
      'EG_HOSTKEY_TYPES',
      'no RSA or ECDSA host key configured: Rundeck\'s JSch 0.1.x cannot use ed25519 and fails with "Algorithm negotiation fail"; add an RSA key from "execgate keygen"',
    ),
  authorizedKeysUnreadable: (path: string, reason: string) =>
    new ExecgateError(
      'EG_AUTHKEYS_UNREADABLE',
      `cannot read authorized_keys ${path}: ${reason}`,
    ),
  authorizedKeysUnsafe: (problem: string) => new ExecgateError('EG_AUTHKEYS_PERMISSIONS', problem),
  authorizedKeysNeedAccounts: (path: string, lines: number[], why: string) =>
    new ExecgateError(
      'EG_AUTHKEYS_SHARED',
      `authorized_keys ${path} is one file for every SSH username and ${why}, so every key must name the local accounts it may log in as; line${lines.length > 1 ? 's' : ''} ${lines.join(', ')} lack${lines.length > 1 ? '' : 's'} that option: put execgate-accounts="NAME[,NAME...]" before the key (e.g. execgate-accounts="rundeck" ssh-ed25519 AAAA...), or give each SSH user a file of its own with authorizedKeys: /etc/execgate/authorized_keys/%u`,
    ),
  runAsRootNotPermitted: (user: string, key: string) =>
    new ExecgateError(
      'EG_RUNAS_ROOT',
      `${key} is "${user}", which is uid 0 (root), and runAs.permitRoot is false: map it to an unprivileged account, or set runAs.permitRoot: true if commands really must run as root`,
    ),
  accountUnknown: (user: string, key: string) =>
    new ExecgateError(
      'EG_RUNAS_UNKNOWN',
      `${key} "${user}" is not a local account (getent passwd ${user} found nothing): create it or fix ${key}`,
    ),
  runAsNeedsRoot: (user: string, current: string, key: string) =>
    new ExecgateError(
      'EG_RUNAS_NOT_ROOT',
      `${key} is "${user}" but execgate runs as "${current}" without root, so it can only run commands as "${current}": run execgate as root or set ${key} to "${current}"`,
    ),
  ssh2PatchMissing: (file: string, lacks: string) =>
    new ExecgateError(
      'EG_SSH2_UNPATCHED',
      `${file} lacks execgate's ${lacks}: reinstall with "npm ci" so patch-package applies patches/ssh2+*.patch`,
    ),
  setprivMissing: (tried: string[]) =>
    new ExecgateError(
      'EG_SETPRIV_MISSING',
      `setpriv is needed to run commands as other accounts but is not at ${tried.join(' or ')}: install util-linux (apt-get install util-linux)`,
    ),
  envAllowUnsafe: (pattern: string, names: string[]) =>
    new ExecgateError(
      'EG_ENV_UNSAFE',
      `env.allow pattern "${pattern}" lets clients set ${names.join(', ')}, which change how programs load or run: remove it from env.allow, or set env.allowUnsafe: true if every account commands run as is trusted`,
    ),
  listenFailed: (host: string, port: number, reason: string) =>
    new ExecgateError(
      'EG_LISTEN',
      `cannot listen on ${host}:${port}: ${reason}`,
    ),
} as const;
