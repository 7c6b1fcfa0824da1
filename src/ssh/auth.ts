import { statSync } from 'node:fs';
import type { AuthContext } from 'ssh2';
import { readAuthorizedKeys, type AuthorizedKey } from './authorizedKeys.js';
import { addressMatchesFrom } from './keyOptions.js';
import { fingerprintOf } from './hostKeys.js';
import type { AuthFailureLimiter } from './limits.js';
import type { RunAsPolicy, RunAsTarget } from '../exec/runAs.js';
import type { Logger } from '../log.js';
import { errors } from '../errors.js';
import type { Metrics } from '../metrics.js';

export interface AuthenticatedIdentity {
  username: string;
  keyFingerprint: string;
  key: AuthorizedKey;
  runAs: RunAsTarget;
}

export interface AuthOptions {
  authorizedKeysPath: string;
  allowSshRsaSha1: boolean;
  permitKeyEnvironment: boolean;
  runAs: RunAsPolicy;
  failures: AuthFailureLimiter;
  log: Logger;
  metrics: Metrics;
}

/**
 * Public-key authentication against an OpenSSH authorized_keys file. The file is
 * re-read whenever its mtime or size changes, so keys can be added without a restart.
 */
export class PublicKeyAuthenticator {
  private keys = new Map<string, AuthorizedKey>();
  private loadedStamp = '';

  constructor(private readonly options: AuthOptions) {
    this.reloadIfChanged(true);
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
    if (stamp === this.loadedStamp) return;
    try {
      const file = readAuthorizedKeys(path, this.options.permitKeyEnvironment);
      for (const problem of file.problems) this.options.log.warn({ problem }, `authorized_keys line skipped: ${problem}`);
      this.keys = new Map(file.keys.map((k) => [k.blob.toString('base64'), k]));
      this.loadedStamp = stamp;
      this.options.log.info({ path, keys: file.keys.length, skipped: file.problems.length }, 'authorized_keys loaded');
    } catch (err) {
      if (strict) throw errors.authorizedKeysUnreadable(path, (err as Error).message);
      this.options.log.error({ path, err: (err as Error).message }, 'authorized_keys unreadable; keeping the keys loaded before');
    }
  }

  /**
   * Handles one ssh2 authentication attempt from the (real, PROXY-aware) client
   * address. onAuthenticated runs before the accept, because ssh2 emits "ready"
   * synchronously inside ctx.accept().
   */
  handle(ctx: AuthContext, client: { address: string; label: string }, onAuthenticated: (identity: AuthenticatedIdentity) => void): void {
    const { log, metrics, failures } = this.options;
    if (ctx.method !== 'publickey') {
      // OpenSSH always probes with "none" first: that is not a failure worth counting.
      if (ctx.method !== 'none') {
        metrics.authFailures.inc({ method: ctx.method, reason: 'method_not_allowed' });
        failures.fail(client.address, `user:${ctx.username}`);
      }
      ctx.reject(['publickey']);
      return;
    }
    this.reloadIfChanged();
    const fingerprint = fingerprintOf(ctx.key.data);
    const fail = (reason: string, category: string, count = true) => {
      metrics.authFailures.inc({ method: 'publickey', reason: category });
      if (count) failures.fail(client.address, fingerprint);
      log.warn(
        { client: client.label, user: ctx.username, keyType: ctx.key.algo, fingerprint, reason },
        `authentication failed for ${ctx.username} from ${client.label}: ${reason}`,
      );
      ctx.reject(['publickey']);
    };
    const blocked = failures.blockedFor(client.address, fingerprint);
    if (blocked > 0) return fail(`too many failures for key ${fingerprint} from ${client.address}; blocked for ${blocked} s more (limits.authFailures)`, 'rate_limited', false);
    const runAs = this.options.runAs.resolve(ctx.username);
    if (!runAs) return fail(`username "${ctx.username}" is not in runAs.accounts`, 'unknown_user');
    const key = this.keys.get(ctx.key.data.toString('base64'));
    if (!key) return fail(`key ${fingerprint} is not in ${this.options.authorizedKeysPath}`, 'unknown_key');
    const where = `${this.options.authorizedKeysPath}:${key.line}`;
    const { expiresAt, from } = key.parsedOptions;
    if (expiresAt && expiresAt.getTime() <= Date.now()) return fail(`key ${fingerprint} expired at ${expiresAt.toISOString()} (expiry-time in ${where})`, 'expired');
    if (from && !addressMatchesFrom(client.address, from)) return fail(`key ${fingerprint} is not allowed from ${client.address} (from= in ${where})`, 'from_mismatch');
    if (ctx.key.algo === 'ssh-rsa' && !this.options.allowSshRsaSha1) {
      return fail('ssh-rsa (SHA-1) signatures are disabled (auth.allowSshRsaSha1: false)', 'sha1_disabled');
    }
    if (!ctx.signature) {
      ctx.accept(); // PK_OK: the client may now sign with this key
      return;
    }
    if (!key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo)) return fail('signature does not verify', 'bad_signature');
    failures.succeed(client.address, fingerprint);
    onAuthenticated({ username: ctx.username, keyFingerprint: fingerprint, key, runAs });
    ctx.accept();
  }
}
