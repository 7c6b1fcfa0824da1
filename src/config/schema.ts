import { z } from 'zod';
import { authorizedKeysPathProblem } from './authorizedKeysPath.js';
import { etcdConnectionShape } from './etcdConnection.js';

/** authorizedKeys: a path, with only the tokens %u, %h and %%. */
const authorizedKeysPath = z
  .string()
  .min(1)
  .superRefine((p, ctx) => {
    const problem = authorizedKeysPathProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const port = z.int().min(0, '0 (any free port) to 65535').max(65535);
const seconds = z.number().positive();

/** Limits that protect the gateway; each is enforced with a message and counted. */
const limits = z.strictObject({
  maxConnections: z.int().positive().default(2000),
  maxConnectionsPerSource: z.int().positive().default(1000),
  maxCommands: z.int().positive().default(1000),
  maxCommandsPerUser: z.int().positive().default(1000),
  maxChannelsPerConnection: z.int().positive().default(10),
  /** Linux passes the command line to the shell as one argument, and one argument may have at most 128 KiB with its NUL (MAX_ARG_STRLEN). */
  maxCommandBytes: z.int().positive().max(131071, 'at most 131071: Linux passes the command line to the shell as one argument of at most 128 KiB (MAX_ARG_STRLEN)').default(131071),
  maxEnvVars: z.int().nonnegative().default(256),
  maxEnvBytes: z
    .int()
    .nonnegative()
    .default(256 * 1024),
  /**
   * sshd's LoginGraceTime: from TCP accept (covering the PROXY header and the SSH
   * banner) to successful authentication; then the socket is closed.
   */
  loginGraceSeconds: seconds.default(30),
  /**
   * sshd's MaxAuthTries: failed authentication requests per connection ("none"
   * probes count, except the first); then the client is disconnected.
   */
  maxAuthTries: z.int().positive().default(6),
  /** Disconnect a connection that has had no running command for this long. */
  idleTimeoutSeconds: seconds.default(900),
  /** SSH keepalive probes find dead clients under long silent jobs. */
  keepaliveIntervalSeconds: seconds.default(15),
  keepaliveCountMax: z.int().positive().default(4),
  authFailures: z
    .strictObject({
      threshold: z.int().positive().default(5),
      windowSeconds: seconds.default(60),
      baseBlockSeconds: seconds.default(1),
      maxBlockSeconds: seconds.default(300),
      perSourceThreshold: z.int().positive().default(1000),
    })
    .prefault({}),
});

export const configSchema = z.strictObject({
  node: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
    .optional(),
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(2222),
    })
    .prefault({}),
  /**
   * More SSH listeners, e.g. the cluster VIP (bound with net.ipv4.ip_nonlocal_bind=1
   * so it can listen before the VIP arrives).
   */
  alsoListen: z.array(z.strictObject({ host: z.string().min(1), port })).default([]),
  /** Health, leader, status, metrics and admin endpoints. */
  http: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(9422),
      /**
       * Bearer token for /admin/* and for command lines in /status and the page; once
       * one is set every caller needs it, loopback included. Prefer tokenFile.
       */
      token: z
        .string()
        .min(16, 'use at least 16 characters')
        .regex(/^[\x21-\x7e]+$/, 'printable characters without spaces')
        .optional(),
      /** A file (mode 0600, owner root or execgate's account) holding the token, so the config need not. */
      tokenFile: z.string().min(1).optional(),
    })
    .refine((h) => h.token === undefined || h.tokenFile === undefined, {
      message: 'set http.token or http.tokenFile, not both (prefer tokenFile: a mode 0600 file holding the token)',
      path: ['tokenFile'],
    })
    .prefault({}),
  /**
   * After `execgate drain`, how long running commands may take before they are killed
   * and leadership is released anyway (default 600; a cluster file's
   * leadership.drainTimeoutSeconds applies when this is not set).
   */
  drainTimeoutSeconds: seconds.optional(),
  hostKeys: z.array(z.string().min(1)).min(1, 'list at least one host key file'),
  /**
   * OpenSSH authorized_keys: one file, or one per SSH user with sshd's tokens %u (the
   * SSH username), %h (the home of the account it runs as, e.g. %h/.ssh/authorized_keys)
   * and %% (a literal %). Ownership and modes are checked like sshd's StrictModes.
   */
  authorizedKeys: authorizedKeysPath,
  auth: z
    .strictObject({
      /** Old JSch (Rundeck <= 5.9) signs user auth with ssh-rsa (SHA-1) only. */
      allowSshRsaSha1: z.boolean().default(true),
      /** Honour environment="..." in authorized_keys (sshd's PermitUserEnvironment). */
      permitKeyEnvironment: z.boolean().default(false),
    })
    .prefault({}),
  /**
   * Without user and accounts the SSH username is the local account (as with sshd),
   * looked up through NSS at authentication; a username with no account is refused,
   * and a gateway without root runs commands only as its own account.
   */
  runAs: z
    .strictObject({
      /** Every SSH username runs as this one account (an explicit mapping). */
      user: z.string().min(1).optional(),
      /** SSH username -> local account; when given, other usernames are refused at authentication. */
      accounts: z.record(z.string().min(1), z.string().min(1)).optional(),
      /** Commands may run as uid 0 (by username or mapping) only when true. */
      permitRoot: z.boolean().default(false),
    })
    .refine((r) => r.user === undefined || r.accounts === undefined, {
      message: 'set runAs.user (every username runs as one account) or runAs.accounts (a map), not both',
      path: ['accounts'],
    })
    .prefault({}),
  /** PROXY protocol v2 (HAProxy send-proxy-v2), accepted only from these addresses. */
  proxyProtocol: z
    .strictObject({
      trustedProxies: z.array(z.ipv4().or(z.ipv6())).default([]),
    })
    .prefault({}),
  env: z
    .strictObject({
      allow: z.array(z.string().min(1)).default(['RD_*']),
      /** Let env.allow admit loader and interpreter variables (LD_*, PATH, BASH_ENV...): refused unless true. */
      allowUnsafe: z.boolean().default(false),
    })
    .prefault({}),
  exec: z
    .strictObject({
      shell: z.string().startsWith('/').default('/bin/sh'),
      killGraceSeconds: seconds.default(5),
      /** After the client closes the channel, how long stdin EOF may take to end the command by itself. */
      closeGraceMs: z.int().nonnegative().default(250),
      path: z.string().default('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'),
      sftpServer: z.string().startsWith('/').default('/usr/lib/openssh/sftp-server'),
    })
    .prefault({}),
  limits: limits.prefault({}),
  /**
   * Run-once: the scheduler sends the same step to every gateway; one runs it (the
   * first to claim it in etcd), the others mirror its exit status. Off by default.
   */
  runOnce: z
    .strictObject({
      enabled: z.boolean().default(false),
      etcd: z
        .strictObject({
          ...etcdConnectionShape,
          prefix: z.string().startsWith('/').default('/execgate/run-once'),
        })
        .optional(),
      /** Losers exit 0 at once instead of waiting for the winner's exit status. */
      skipFast: z.boolean().default(false),
      retentionSeconds: z
        .int()
        .min(60)
        .default(7 * 24 * 3600),
      livenessTtlSeconds: z.int().min(2).default(5),
      pollMs: z.int().min(20).default(250),
    })
    .prefault({}),
  audit: z.strictObject({
    path: z.string().min(1),
  }),
  /**
   * Where the gateway keeps state across restarts (the algorithm posture record).
   * Default: a cluster file's stateDir, else the audit log's directory.
   */
  stateDir: z.string().min(1).optional(),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
