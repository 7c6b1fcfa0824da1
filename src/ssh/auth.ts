import { statSync } from 'node:fs';
import type { AuthContext } from 'ssh2';
import { readAuthorizedKeys, type AuthorizedKey } from './authorizedKeys.js';
import { fingerprintOf } from './hostKeys.js';
import type { Logger } from '../log.js';
import { errors } from '../errors.js';
import type { Metrics } from '../metrics.js';

export interface AuthenticatedIdentity {
  username: string;
  keyFingerprint: string;
  key: AuthorizedKey;
}

export interface AuthOptions {
  authorizedKeysPath: string;
  allowSshRsaSha1: boolean;
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
      const file = readAuthorizedKeys(path);
      for (const problem of file.problems) this.options.log.warn({ problem }, 'authorized_keys line skipped');
      this.keys = new Map(file.keys.map((k) => [k.blob.toString('base64'), k]));
      this.loadedStamp = stamp;
      this.options.log.info({ path, keys: file.keys.length }, 'authorized_keys loaded');
    } catch (err) {
      if (strict) throw errors.authorizedKeysUnreadable(path, (err as Error).message);
      this.options.log.error({ path, err: (err as Error).message }, 'authorized_keys unreadable; keeping the keys loaded before');
    }
  }

  /**
   * Handles one ssh2 authentication attempt. onAuthenticated runs before the accept,
   * because ssh2 emits "ready" synchronously inside ctx.accept().
   */
  handle(ctx: AuthContext, client: string, onAuthenticated: (identity: AuthenticatedIdentity) => void): void {
    if (ctx.method !== 'publickey') {
      // OpenSSH always probes with "none" first: that is not a failure worth counting.
      if (ctx.method !== 'none') this.options.metrics.authFailures.inc({ method: ctx.method, reason: 'method_not_allowed' });
      ctx.reject(['publickey']);
      return;
    }
    this.reloadIfChanged();
    const fingerprint = fingerprintOf(ctx.key.data);
    const fail = (reason: string, category: string) => {
      this.options.metrics.authFailures.inc({ method: 'publickey', reason: category });
      this.options.log.warn(
        { client, user: ctx.username, keyType: ctx.key.algo, fingerprint, reason },
        `authentication failed for ${ctx.username} from ${client}: ${reason}`,
      );
      ctx.reject(['publickey']);
    };
    const key = this.keys.get(ctx.key.data.toString('base64'));
    if (!key) return fail(`key ${fingerprint} is not in ${this.options.authorizedKeysPath}`, 'unknown_key');
    if (ctx.key.algo === 'ssh-rsa' && !this.options.allowSshRsaSha1) {
      return fail('ssh-rsa (SHA-1) signatures are disabled (auth.allowSshRsaSha1: false)', 'sha1_disabled');
    }
    if (!ctx.signature) {
      ctx.accept(); // PK_OK: the client may now sign with this key
      return;
    }
    if (!key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo)) return fail('signature does not verify', 'bad_signature');
    onAuthenticated({ username: ctx.username, keyFingerprint: fingerprint, key });
    ctx.accept();
  }
}
