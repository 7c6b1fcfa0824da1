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

const TOKEN_ADVICE = 'pass --token-file FILE (or --token, EXECGATE_HTTP_TOKEN)';

export const errors = {
  // Starting a node: its config file, host keys, authorized_keys, accounts, environment, listeners.
  configUnreadable: (path: string, reason: string) => new ExecgateError('EG_CONFIG_UNREADABLE', `cannot read config ${path}: ${reason}`),
  configSyntax: (path: string, reason: string) => new ExecgateError('EG_CONFIG_SYNTAX', `config ${path} is not valid YAML: ${reason}`),
  configInvalid: (path: string, problems: string[]) => new ExecgateError('EG_CONFIG_INVALID', `config ${path} is invalid: ${problems.join('; ')}`),
  hostKeyMissing: (path: string) => new ExecgateError('EG_HOSTKEY_MISSING', `host key ${path} does not exist: create it with "execgate keygen --dir <dir>" and list it under hostKeys`),
  hostKeyUnreadable: (path: string, reason: string) => new ExecgateError('EG_HOSTKEY_UNREADABLE', `cannot read host key ${path}: ${reason}`),
  hostKeyInvalid: (path: string, reason: string) =>
    new ExecgateError(
      'EG_HOSTKEY_INVALID',
      `host key ${path} is not a usable private key: ${reason}; check it with "ssh-keygen -y -f ${path}", or replace it with "execgate keygen --dir <dir> --force" (and copy the new keys to every node)`,
    ),
  hostKeyTooOpen: (path: string, mode: number) =>
    new ExecgateError('EG_HOSTKEY_PERMISSIONS', `host key ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}, readable by group or others: run "chmod 600 ${path}"`),
  hostKeyNoLegacyType: () =>
    new ExecgateError(
      'EG_HOSTKEY_TYPES',
      'no RSA or ECDSA host key configured: Rundeck\'s JSch 0.1.x cannot use ed25519 and fails with "Algorithm negotiation fail"; add an RSA key from "execgate keygen"',
    ),
  authorizedKeysUnreadable: (path: string, reason: string) => new ExecgateError('EG_AUTHKEYS_UNREADABLE', `cannot read authorized_keys ${path}: ${reason}`),
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
  accountUnknown: (user: string, key: string) => new ExecgateError('EG_RUNAS_UNKNOWN', `${key} "${user}" is not a local account (getent passwd ${user} found nothing): create it or fix ${key}`),
  runAsNeedsRoot: (user: string, current: string, key: string) =>
    new ExecgateError(
      'EG_RUNAS_NOT_ROOT',
      `${key} is "${user}" but execgate runs as "${current}" without root, so it can only run commands as "${current}": run execgate as root or set ${key} to "${current}"`,
    ),
  ssh2PatchMissing: (file: string, lacks: string) => new ExecgateError('EG_SSH2_UNPATCHED', `${file} lacks execgate's ${lacks}: reinstall with "npm ci" so patch-package applies patches/ssh2+*.patch`),
  setprivMissing: (tried: string[]) =>
    new ExecgateError('EG_SETPRIV_MISSING', `setpriv is needed to run commands as other accounts but is not at ${tried.join(' or ')}: install util-linux (apt-get install util-linux)`),
  envAllowUnsafe: (pattern: string, names: string[]) =>
    new ExecgateError(
      'EG_ENV_UNSAFE',
      `env.allow pattern "${pattern}" lets clients set ${names.join(', ')}, which change how programs load or run: remove it from env.allow, or set env.allowUnsafe: true if every account commands run as is trusted`,
    ),
  listenFailed: (host: string, port: number, reason: string) => new ExecgateError('EG_LISTEN', `cannot listen on ${host}:${port}: ${reason}`),

  // A cluster file: its nodes, what can be rendered from it, its leadership source.
  /** advice goes in parentheses after the file; nodes, when given, are listed to pick from. */
  clusterNodeUnknown: (node: string, source: string, nodes?: string[], advice?: string) =>
    new ExecgateError('EG_CLUSTER_NODE', `node "${node}" is not in ${source}${advice ? ` (${advice})` : ''}${nodes ? `; its nodes are: ${nodes.join(', ')}` : ''}`),
  renderRefused: (target: string, source: string, problems: string[]) => new ExecgateError('EG_RENDER_REFUSED', `cannot render ${target} from ${source}: ${problems.join('; ')}`),
  etcdTlsFile: (key: string, path: string, problem: string) => new ExecgateError('EG_ETCD_TLS_FILE', `${key}: ${path} ${problem}`),
  etcdSetupNoEtcd: () => new ExecgateError('EG_ETCD_SETUP', 'the cluster file has no leadership.etcd: etcd-setup prepares the etcd that leadership.etcd names'),
  etcdSetupRootLogin: (message: string) =>
    new ExecgateError(
      'EG_ETCD_SETUP',
      `etcd refused the root login (${message}); pass the root password file that the first etcd-setup --apply used (--root-password-file, execgate certs wrote etcd-root-password)`,
    ),
  etcdSetupNotLimited: (user: string, key: string) =>
    new ExecgateError(
      'EG_ETCD_SETUP',
      `etcd user "${user}" could write ${key}, outside the cluster's prefix: authentication is not in force or the user has another role; check with etcdctl user get ${user}`,
    ),
  etcdSetupUnknownNode: (node: string, nodes: string[]) => new ExecgateError('EG_USAGE', `--node ${node} is not in the cluster file (one of: ${nodes.join(', ')})`),
  etcdSetupNeedsRootPassword: () => new ExecgateError('EG_USAGE', 'etcd-setup --apply needs --root-password-file FILE (execgate certs wrote DIR/etcd-root-password)'),
  opensslMissing: (bin: string) => new ExecgateError('EG_OPENSSL', `${bin} not found: install openssl (apt-get install openssl), or set EXECGATE_OPENSSL to its path`),
  opensslFailed: (what: string, stderr: string) => new ExecgateError('EG_OPENSSL', `openssl ${what} failed: ${stderr}`),
  certsCaKeyMissing: (ca: string, key: string) =>
    new ExecgateError('EG_CERTS_CA', `${ca} exists but its key ${key} does not: restore the key, or move ${ca} away to make a new CA (then every member and gateway needs the new files)`),
  certsDays: (value: string, max: number) => new ExecgateError('EG_USAGE', `--days ${value}: a whole number of days from 1 to ${max}`),
  etcdPasswordFile: (key: string, path: string, problem: string) => new ExecgateError('EG_ETCD_PASSWORD_FILE', `${key}: ${path} ${problem}`),
  leadershipEtcdMissing: () => new ExecgateError('EG_LEADERSHIP_SOURCE', 'leadership.source "etcd" needs leadership.etcd (endpoints, ttlSeconds, marginSeconds)'),
  leadershipVrrpNeedsCluster: () => new ExecgateError('EG_LEADERSHIP_SOURCE', 'leadership.source "vrrp" needs a cluster file (serve --cluster FILE --node NAME)'),
  leadershipSourceUnavailable: (source: string) => new ExecgateError('EG_LEADERSHIP_SOURCE', `leadership.source "${source}" is not available in this build`),
  leadershipVrrpTooManyNodes: (slots: bigint | number, node: string, index: number) =>
    new ExecgateError('EG_LEADERSHIP_SOURCE', `leadership.source "vrrp" supports at most ${slots} nodes; ${node} is nodes.${index}`),

  // The HTTP surface: its token file, and the CLI verbs that call it (status, drain, undrain).
  tokenFileUnreadable: (key: string, path: string, err: NodeJS.ErrnoException) => {
    const how =
      err.code === 'ENOENT' ? `create it: (umask 077; openssl rand -hex 32 > ${path})` : err.code === 'ELOOP' ? 'name the file itself, not a symbolic link' : 'check the path and its permissions';
    return new ExecgateError('EG_HTTP_TOKEN_FILE', `${key}: cannot read ${path}: ${err.code ?? err.message}; ${how}`);
  },
  tokenFileNotRegular: (key: string, path: string) => new ExecgateError('EG_HTTP_TOKEN_FILE', `${key}: ${path} is not a regular file; name a file holding the token`),
  tokenFileTooOpen: (key: string, path: string, mode: number) =>
    new ExecgateError(
      'EG_HTTP_TOKEN_FILE',
      `${key}: ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}, open to group or others (any local account could drain this node and read command lines): run "chmod 600 ${path}"`,
    ),
  /** self: the uid execgate runs as. */
  tokenFileForeignOwner: (key: string, path: string, uid: number, self: number) =>
    new ExecgateError(
      'EG_HTTP_TOKEN_FILE',
      `${key}: ${path} is owned by uid ${uid}, who could change the token: run "chown ${self === 0 ? 'root' : self} ${path}" (owner root or the account execgate runs as)`,
    ),
  tokenFileTooLarge: (key: string, path: string, size: number) => new ExecgateError('EG_HTTP_TOKEN_FILE', `${key}: ${path} is ${size} bytes, not a token file (one line, e.g. openssl rand -hex 32)`),
  tokenFileNoToken: (key: string, path: string, minLength: number) =>
    new ExecgateError('EG_HTTP_TOKEN_FILE', `${key}: ${path} must hold one token of at least ${minLength} printable characters without spaces: (umask 077; openssl rand -hex 32 > ${path})`),
  /** The CLI's --token-file, read without the server's ownership and mode checks. */
  tokenFileFlag: (path: string, problem: string) => new ExecgateError('EG_HTTP_TOKEN_FILE', `--token-file ${path}: ${problem}`),
  httpUnreachable: (origin: string, why: string) => new ExecgateError('EG_HTTP_UNREACHABLE', `cannot reach execgate at ${origin}: ${why} (is "execgate serve" running with http.enabled? pass --url)`),
  httpReplyNotJson: (href: string, status: number, text: string) => new ExecgateError('EG_HTTP_REPLY', `${href} answered ${status} with something that is not JSON: ${text.slice(0, 200)}`),
  /** tokenNote: where the token came from, or where the CLI looked for one. */
  httpForbidden: (origin: string, method: string, path: string, status: number, error: string, tokenNote?: string) =>
    new ExecgateError('EG_HTTP_FORBIDDEN', `${origin} refused ${method} ${path} (HTTP ${status}): ${error}; ${tokenNote ? `${tokenNote}; ${TOKEN_ADVICE}` : TOKEN_ADVICE}`),
  adminFailed: (action: string, status: number, detail: string) => new ExecgateError('EG_HTTP_ADMIN', `${action} failed (HTTP ${status}): ${detail}`),
  drainCancelled: (node: string) => new ExecgateError('EG_DRAIN_CANCELLED', `${node}: the drain was cancelled (undrain) before it completed`),

  // The CLI called the wrong way: a flag missing, two that exclude each other, a target to pick.
  flagMissing: (verb: string, flag: string) => new ExecgateError('EG_USAGE', `${verb} needs --${flag}`),
  urlInvalid: (url: string, example: string) => new ExecgateError('EG_USAGE', `--url ${url} is not a URL (e.g. ${example})`),
  clusterOrConfig: () => new ExecgateError('EG_USAGE', 'give --cluster or --config, not both'),
  serveClusterNeedsNode: () => new ExecgateError('EG_USAGE', 'serve --cluster needs --node NAME (one of the nodes in the cluster file)'),
  keygenNeedsDir: () => new ExecgateError('EG_USAGE', 'keygen needs --dir DIR or --cluster FILE'),
  renderTargetMissing: (targets: readonly string[]) => new ExecgateError('EG_USAGE', `render needs one of: ${targets.join(', ')}`),
  renderNeedsNode: (target: string, nodes: string[]) => new ExecgateError('EG_USAGE', `render ${target} needs --node NAME (one of: ${nodes.join(', ')})`),
  httpDisabled: (source: string) => new ExecgateError('EG_USAGE', `${source} has http.enabled: false; there is no HTTP surface to call`),
  httpPortPickedAtStart: (source: string) => new ExecgateError('EG_USAGE', `${source} has http.port 0 (a port picked at start); pass --url with the port from its "http listening" log line`),
} as const;
