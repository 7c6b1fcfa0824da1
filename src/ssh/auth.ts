import { statSync } from 'node:fs';
import type { AuthContext, PublicKeyAuthContext } from 'ssh2';
import { keyStrengthProblem, readAuthorizedKeys, strictModesProblem, type AuthorizedKey, type FileOwner } from './authorizedKeys.js';
import { authorizedKeysPathProblem, expandAuthorizedKeysPath, isPerUserPath } from '../config/authorizedKeysPath.js';
import { addressMatchesFrom } from './keyOptions.js';
import { fingerprintOf } from './hostKeys.js';
import type { AuthFailureLimiter } from './limits.js';
import type { RunAsPolicy, RunAsResolution, RunAsTarget } from '../account/runAs.js';
import { currentAccount, plausibleAccountName, type Account } from '../account/account.js';
import type { Logger } from '../log.js';
import { errors, ExecgateError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { isoTime } from '../time.js';

export interface AuthenticatedIdentity {
  username: string;
  keyFingerprint: string;
  key: AuthorizedKey;
  runAs: RunAsTarget;
}

export interface AuthOptions {
  /** One file, or one per SSH user with %u / %h (sshd's AuthorizedKeysFile tokens). */
  authorizedKeysPath: string;
  allowSshRsaSha1: boolean;
  permitKeyEnvironment: boolean;
  runAs: RunAsPolicy;
  failures: AuthFailureLimiter;
  log: Logger;
  metrics: Metrics;
}

/** One authorized_keys file as last read; re-read when its mtime, size or inode changes. */
interface KeyFile {
  stamp: string;
  keys: Map<string, AuthorizedKey>;
}

/** Per-user files remembered at most (each is re-checked with stat at every attempt). */
const MAX_PER_USER_FILES = 1024;
/** How long a StrictModes verdict stands. */
const MODES_CHECK_MS = 1000;

/** The keys an attempt is checked against, or why there are none. */
type KeySource = { path: string; keys: Map<string, AuthorizedKey> } | { path: string; problem: string; category: string };

/**
 * Public-key authentication against OpenSSH authorized_keys files: one shared file, or
 * one per SSH user (%u, %h). A file is re-read whenever its mtime, size or inode
 * changes, so keys can be added without a restart; its ownership and modes are checked
 * like sshd's StrictModes at every attempt.
 */
export class PublicKeyAuthenticator {
  private readonly perUser: boolean;
  private shared: KeyFile = { stamp: '', keys: new Map() };
  private readonly perUserFiles = new Map<string, KeyFile>();
  private readonly modesVerdicts = new Map<string, { at: number; problem: string | null }>();
  /** Shared file only: who may own it, and whether each key must carry execgate-accounts. */
  private readonly sharedOwners: FileOwner[] = [];
  private readonly sharedNeedsAccounts: string | null = null;

  constructor(private readonly options: AuthOptions) {
    const path = options.authorizedKeysPath;
    const tokenProblem = authorizedKeysPathProblem(path);
    if (tokenProblem) throw errors.configInvalid('authorizedKeys', [`authorizedKeys: ${tokenProblem}`]);
    this.perUser = isPerUserPath(path);
    if (this.perUser) {
      options.log.info({ authorizedKeys: path }, 'authorized_keys: one file per SSH user, read at authentication (a missing file means no keys)');
      return;
    }
    const me = currentAccount();
    const reach = options.runAs.reachable();
    this.sharedOwners = [{ uid: me.uid, name: me.name }];
    if (reach.kind === 'accounts' && reach.accounts.length === 1) this.sharedOwners.push({ uid: reach.accounts[0]!.uid, name: reach.accounts[0]!.name });
    if (reach.kind === 'any') this.sharedNeedsAccounts = 'execgate runs as root with no runAs mapping, so a username may be any local account';
    else if (reach.accounts.length > 1) this.sharedNeedsAccounts = `runAs maps usernames to ${reach.accounts.length} local accounts (${reach.accounts.map((a) => a.name).join(', ')})`;
    const unsafe = this.sharedModesProblem(true);
    if (unsafe) throw errors.authorizedKeysUnsafe(unsafe);
    this.reloadIfChanged(true);
  }

  private sharedModesProblem(strict: boolean): string | null {
    const path = this.options.authorizedKeysPath;
    try {
      return this.modesProblem(path, this.sharedOwners);
    } catch (err) {
      if (strict) throw errors.authorizedKeysUnreadable(path, (err as Error).message);
      return `cannot check authorized_keys ${path}: ${(err as Error).message}`;
    }
  }

  /** Throws at startup when the file cannot be read; later failures keep the last good keys. */
  private reloadIfChanged(strict = false): void {
    const path = this.options.authorizedKeysPath;
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (err) {
      if (strict) throw errors.authorizedKeysUnreadable(path, (err as Error).message);
      return;
    }
    if (stamp === this.shared.stamp) return;
    try {
      const file = readAuthorizedKeys(path, this.options.permitKeyEnvironment);
      let keys = file.keys;
      const problems = [...file.problems];
      if (this.sharedNeedsAccounts) {
        const unbound = keys.filter((k) => !k.parsedOptions.accounts);
        if (unbound.length && strict)
          throw errors.authorizedKeysNeedAccounts(
            path,
            unbound.map((k) => k.line),
            this.sharedNeedsAccounts,
          );
        for (const k of unbound) problems.push(`${path}:${k.line}: no execgate-accounts="..." option, which every key of this shared file needs (${this.sharedNeedsAccounts}); key skipped`);
        keys = keys.filter((k) => k.parsedOptions.accounts);
      }
      for (const problem of problems) this.options.log.warn({ problem }, `authorized_keys line skipped: ${problem}`);
      this.shared = { stamp, keys: new Map(keys.map((k) => [k.blob.toString('base64'), k])) };
      this.options.log.info({ path, keys: keys.length, skipped: problems.length }, 'authorized_keys loaded');
    } catch (err) {
      if (strict) throw err instanceof ExecgateError ? err : errors.authorizedKeysUnreadable(path, (err as Error).message);
      this.options.log.error({ path, err: (err as Error).message }, 'authorized_keys unreadable; keeping the keys loaded before');
    }
  }

  /**
   * The StrictModes verdict for a file, at most MODES_CHECK_MS old: a login makes two
   * attempts (query, then signature) and a scheduler opens many logins at once, and a
   * check stats every directory up to /. A changed mode counts within that time.
   */
  private modesProblem(path: string, owners: readonly FileOwner[]): string | null {
    const key = `${path}\0${owners.map((o) => o.uid).join(',')}`;
    const now = Date.now();
    const cached = this.modesVerdicts.get(key);
    if (cached && now - cached.at < MODES_CHECK_MS) return cached.problem;
    const problem = strictModesProblem(path, owners);
    if (this.modesVerdicts.size >= MAX_PER_USER_FILES) this.modesVerdicts.clear();
    this.modesVerdicts.set(key, { at: now, problem });
    return problem;
  }

  /** The keys for one SSH username that runs as this account, after the StrictModes checks. */
  private keysFor(username: string, account: Account): KeySource {
    if (!this.perUser) {
      const path = this.options.authorizedKeysPath;
      const unsafe = this.sharedModesProblem(false);
      if (unsafe) return { path, problem: unsafe, category: 'authorized_keys_unsafe' };
      this.reloadIfChanged();
      return { path, keys: this.shared.keys };
    }
    const pattern = this.options.authorizedKeysPath;
    if (!plausibleAccountName(username)) {
      return { path: pattern, problem: `username "${username}" cannot name a file in ${pattern}`, category: 'unknown_user' };
    }
    const path = expandAuthorizedKeysPath(pattern, { user: username, home: account.home });
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (err) {
      this.perUserFiles.delete(path);
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})`;
      return { path, problem: `${path} ${why}, so ${username} has no keys`, category: 'unknown_key' };
    }
    let unsafe: string | null;
    try {
      unsafe = this.modesProblem(path, [{ uid: account.uid, name: account.name }]);
    } catch (err) {
      unsafe = `cannot check authorized_keys ${path}: ${(err as Error).message}`;
    }
    if (unsafe) return { path, problem: unsafe, category: 'authorized_keys_unsafe' };
    const known = this.perUserFiles.get(path);
    if (known && known.stamp === stamp) return { path, keys: known.keys };
    try {
      const file = readAuthorizedKeys(path, this.options.permitKeyEnvironment);
      for (const problem of file.problems) this.options.log.warn({ problem }, `authorized_keys line skipped: ${problem}`);
      const loaded: KeyFile = { stamp, keys: new Map(file.keys.map((k) => [k.blob.toString('base64'), k])) };
      this.perUserFiles.delete(path);
      if (this.perUserFiles.size >= MAX_PER_USER_FILES) this.perUserFiles.delete(this.perUserFiles.keys().next().value!);
      this.perUserFiles.set(path, loaded);
      this.options.log.info({ path, keys: file.keys.length, skipped: file.problems.length }, 'authorized_keys loaded');
      return { path, keys: loaded.keys };
    } catch (err) {
      if (known) {
        this.options.log.error({ path, err: (err as Error).message }, 'authorized_keys unreadable; keeping the keys loaded before');
        return { path, keys: known.keys };
      }
      return { path, problem: `cannot read ${path}: ${(err as Error).message}`, category: 'unknown_key' };
    }
  }

  /**
   * Handles one ssh2 authentication attempt from the (real, PROXY-aware) client
   * address. onAuthenticated runs before the accept, because ssh2 emits "ready"
   * synchronously inside ctx.accept(). The username's account is looked up through
   * NSS first (cached briefly); ssh2 holds later attempts until this one is answered.
   */
  handle(ctx: AuthContext, client: { address: string; label: string }, onAuthenticated: (identity: AuthenticatedIdentity) => void): void {
    const { metrics, failures } = this.options;
    if (ctx.method !== 'publickey') {
      // OpenSSH always probes with "none" first: that is not a failure worth counting.
      if (ctx.method !== 'none') {
        metrics.authFailures.inc({ method: ctx.method, reason: 'method_not_allowed' });
        failures.fail(client.address, `user:${ctx.username}`);
      }
      ctx.reject(['publickey']);
      return;
    }
    const known = this.options.runAs.peek(ctx.username);
    if (known) return this.handlePublicKey(ctx, client, onAuthenticated, known);
    void this.options.runAs
      .resolve(ctx.username)
      .then((resolution) => this.handlePublicKey(ctx, client, onAuthenticated, resolution))
      .catch((err: unknown) => {
        this.options.log.error({ client: client.label, user: ctx.username, err: (err as Error).message }, 'authentication failed inside execgate');
        try {
          ctx.reject(['publickey']);
        } catch {
          // the connection is gone
        }
      });
  }

  private handlePublicKey(ctx: PublicKeyAuthContext, client: { address: string; label: string }, onAuthenticated: (identity: AuthenticatedIdentity) => void, resolution: RunAsResolution): void {
    const { log, metrics, failures } = this.options;
    const fingerprint = fingerprintOf(ctx.key.data);
    // Failures count per source, key AND username: a job configured with the wrong
    // username must not block Rundeck's key for its right one (limits.authFailures).
    const keyCredential = `${fingerprint} as ${ctx.username}`;
    const fail = (reason: string, category: string, credential: string | null = keyCredential) => {
      metrics.authFailures.inc({ method: 'publickey', reason: category });
      if (credential) failures.fail(client.address, credential);
      log.warn({ client: client.label, user: ctx.username, keyType: ctx.key.algo, fingerprint, reason }, `authentication failed for ${ctx.username} from ${client.label}: ${reason}`);
      ctx.reject(['publickey']);
    };
    const blocked = failures.blockedFor(client.address, keyCredential);
    if (blocked > 0) return fail(`too many failures for key ${fingerprint} as ${ctx.username} from ${client.address}; blocked for ${blocked} s more (limits.authFailures)`, 'rate_limited', null);
    const weak = keyStrengthProblem(ctx.key.algo, ctx.key.data);
    if (weak) return fail(weak, 'weak_key');
    // An unknown or refused username counts against the username, not the key.
    if (!resolution.ok) return fail(resolution.reason, resolution.category, `user:${ctx.username}`);
    const runAs = resolution.target;
    const source = this.keysFor(ctx.username, runAs.account);
    if ('problem' in source) return fail(source.problem, source.category);
    const key = source.keys.get(ctx.key.data.toString('base64'));
    if (!key) return fail(`key ${fingerprint} is not in ${source.path}`, 'unknown_key');
    const where = `${source.path}:${key.line}`;
    const { expiresAt, from, accounts } = key.parsedOptions;
    if (accounts && !accounts.includes(runAs.account.name)) {
      return fail(`key ${fingerprint} may log in only as ${accounts.join(', ')}, and ${ctx.username} runs as ${runAs.account.name} (execgate-accounts in ${where})`, 'account_not_allowed');
    }
    if (expiresAt && expiresAt.getTime() <= Date.now()) return fail(`key ${fingerprint} expired at ${isoTime(expiresAt.getTime())} (expiry-time in ${where})`, 'expired');
    if (from && !addressMatchesFrom(client.address, from)) return fail(`key ${fingerprint} is not allowed from ${client.address} (from= in ${where})`, 'from_mismatch');
    // ssh2 reports every RSA key as "ssh-rsa"; the signature algorithm the client asked
    // for (ssh-rsa, rsa-sha2-256, rsa-sha2-512) is in hashAlgo: only SHA-1 is refused.
    if (ctx.key.algo === 'ssh-rsa' && (ctx.hashAlgo ?? 'sha1') === 'sha1' && !this.options.allowSshRsaSha1) {
      return fail('ssh-rsa (SHA-1) signatures are disabled (auth.allowSshRsaSha1: false); use rsa-sha2-256/512 (OpenSSH >= 7.2, mwiede JSch 0.2.x, sshj)', 'sha1_disabled');
    }
    if (!ctx.signature) {
      ctx.accept(); // PK_OK: the client may now sign with this key
      return;
    }
    if (!key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo)) return fail('signature does not verify', 'bad_signature');
    failures.succeed(client.address, keyCredential);
    onAuthenticated({ username: ctx.username, keyFingerprint: fingerprint, key, runAs });
    ctx.accept();
  }
}
