import { execFile, execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { errors } from '../errors.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/**
 * Whether a name can be looked up as an account at all. Refused without a lookup:
 * empty or over-long names, a leading "-" (an option to getent), "/" and control
 * characters (the name becomes a path with authorizedKeys %u), "." and "..", ":"
 * (the passwd field separator) and all-digit names (getent would look a uid up:
 * `getent passwd 0` is root).
 */
export function plausibleAccountName(name: string): boolean {
  return name.length > 0 && name.length <= 256 && name !== '.' && name !== '..' && !name.startsWith('-') && !/^\d+$/.test(name) && !/[/:\x00-\x20\x7f]/.test(name);
}

/** One passwd line for exactly this name (NSS may answer a uid or a case-folded name: not ours). */
function parsePasswd(name: string, text: string): Account | null {
  const line = text.split('\n')[0] ?? '';
  const [user, , uid, gid, , home, shell] = line.split(':');
  if (!user || user !== name || uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return null;
  return { name: user, uid: Number(uid), gid: Number(gid), home: home || '/', shell: shell || '/bin/sh' };
}

/** Looks a local account up through NSS (getent), so LDAP/sssd accounts work too. */
export function lookupAccount(name: string, configKey = 'runAs.user'): Account {
  if (!plausibleAccountName(name)) throw errors.accountUnknown(name, configKey);
  let text: string;
  try {
    text = execFileSync('getent', ['passwd', name], { encoding: 'utf8' });
  } catch {
    throw errors.accountUnknown(name, configKey);
  }
  const account = parsePasswd(name, text);
  if (!account) throw errors.accountUnknown(name, configKey);
  return account;
}

/**
 * The same lookup without blocking the event loop: null when NSS knows no such
 * account (getent exits 2), an error when the lookup itself failed (getent missing,
 * NSS unavailable, timeout), so a broken directory service is not "no such user".
 */
export function lookupAccountAsync(name: string, timeoutMs = 5000): Promise<Account | null> {
  if (!plausibleAccountName(name)) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    execFile('getent', ['passwd', name], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (!err) return resolve(parsePasswd(name, stdout));
      // getent(1): exit status 2 = "one or more supplied key could not be found".
      if ((err as { code?: unknown }).code === 2) return resolve(null);
      reject(new Error(`getent passwd ${name} failed: ${err.message.split('\n')[0]}`));
    });
  });
}

export function currentAccount(): Account {
  const info = userInfo();
  return {
    name: info.username,
    uid: info.uid,
    gid: info.gid,
    home: info.homedir,
    shell: info.shell || '/bin/sh',
  };
}

export interface AccountCacheOptions {
  /** How long a found account is trusted (sshd looks up at every login; this only absorbs bursts). */
  ttlMs?: number;
  /** How long "no such account" is remembered. */
  negativeTtlMs?: number;
  maxEntries?: number;
  /** getent processes at once; further lookups wait (unauthenticated clients choose the names). */
  maxConcurrent?: number;
  lookup?: (name: string) => Promise<Account | null>;
  now?: () => number;
}

/**
 * Account lookups at authentication: cached briefly, one lookup per name at a time,
 * and a bounded number of getent processes, because the names come from clients that
 * have not authenticated yet.
 */
export class AccountCache {
  private readonly entries = new Map<string, { account: Account | null; until: number }>();
  private readonly inFlight = new Map<string, Promise<Account | null>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly maxConcurrent: number;
  private readonly lookupFn: (name: string) => Promise<Account | null>;
  private readonly now: () => number;

  constructor(options: AccountCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 5000;
    this.negativeTtlMs = options.negativeTtlMs ?? 2000;
    this.maxEntries = options.maxEntries ?? 4096;
    this.maxConcurrent = options.maxConcurrent ?? 4;
    this.lookupFn = options.lookup ?? ((name) => lookupAccountAsync(name));
    this.now = options.now ?? Date.now;
  }

  /** The cached answer (null = no such account), or undefined when a lookup is needed. */
  peek(name: string): Account | null | undefined {
    if (!plausibleAccountName(name)) return null;
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(name);
      return undefined;
    }
    return entry.account;
  }

  get(name: string): Promise<Account | null> {
    const cached = this.peek(name);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.inFlight.get(name);
    if (pending) return pending;
    const promise = this.limited(() => this.lookupFn(name))
      .then((account) => {
        this.remember(name, account);
        return account;
      })
      .finally(() => this.inFlight.delete(name));
    this.inFlight.set(name, promise);
    return promise;
  }

  private remember(name: string, account: Account | null): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(name, { account, until: this.now() + (account ? this.ttlMs : this.negativeTtlMs) });
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.running >= this.maxConcurrent) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
