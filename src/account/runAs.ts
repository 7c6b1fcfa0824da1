import { AccountCache, currentAccount, lookupAccount, plausibleAccountName, type Account } from './account.js';
import { errors } from '../errors.js';

export interface RunAsTarget {
  account: Account;
  /** True when the command must switch to another uid (setpriv). */
  switchUser: boolean;
}

export interface RunAsConfig {
  user?: string;
  accounts?: Record<string, string>;
  permitRoot?: boolean;
}

/** Where an SSH username leads: the account to run as, or why the username is refused. */
export type RunAsResolution = { ok: true; target: RunAsTarget } | { ok: false; reason: string; category: 'unknown_user' | 'other_account' | 'root_refused' | 'lookup_failed' };

/**
 * Which local accounts a key in one shared authorized_keys file could reach: one
 * account, the listed ones, or every local account (identity model on a root gateway).
 */
export type Reachable = { kind: 'accounts'; accounts: Account[] } | { kind: 'any' };

/**
 * Which local account an SSH username runs as, following sshd: the SSH username IS the
 * local account (looked up through NSS at authentication) unless runAs maps it
 * (runAs.accounts: SSH user -> account; runAs.user: every username -> one account).
 * A non-root gateway runs commands only as its own account; uid 0 only with
 * runAs.permitRoot.
 */
export class RunAsPolicy {
  private readonly mapped: Map<string, RunAsTarget> | null;
  private readonly everyone: RunAsTarget | null;
  private readonly current: Account;
  readonly permitRoot: boolean;
  private readonly cache: AccountCache;

  constructor(config: RunAsConfig, cache = new AccountCache()) {
    const current = currentAccount();
    this.current = current;
    this.cache = cache;
    this.permitRoot = config.permitRoot ?? false;
    const target = (name: string, key: string): RunAsTarget => {
      if (name === current.name) return this.checkRoot({ account: current, switchUser: false }, key);
      if (current.uid !== 0) throw errors.runAsNeedsRoot(name, current.name, key);
      return this.checkRoot({ account: lookupAccount(name, key), switchUser: true }, key);
    };
    this.mapped = config.accounts ? new Map(Object.entries(config.accounts).map(([user, local]) => [user, target(local, `runAs.accounts.${user}`)])) : null;
    this.everyone = !this.mapped && config.user ? target(config.user, 'runAs.user') : null;
  }

  /** Startup: a mapping to uid 0 needs runAs.permitRoot. */
  private checkRoot(t: RunAsTarget, key: string): RunAsTarget {
    if (t.account.uid === 0 && !this.permitRoot) throw errors.runAsRootNotPermitted(t.account.name, key);
    return t;
  }

  /** "runAs.accounts", "runAs.user" or "identity" (the SSH username is the account). */
  get mode(): 'accounts' | 'user' | 'identity' {
    return this.mapped ? 'accounts' : this.everyone ? 'user' : 'identity';
  }

  /** The answer without waiting, when it is known (mapped, or a cached lookup); otherwise undefined. */
  peek(username: string): RunAsResolution | undefined {
    if (this.mode !== 'identity' || username === this.current.name || this.current.uid !== 0) return this.decide(username, undefined);
    const cached = this.cache.peek(username);
    return cached === undefined ? undefined : this.decide(username, cached);
  }

  async resolve(username: string): Promise<RunAsResolution> {
    const known = this.peek(username);
    if (known) return known;
    try {
      return this.decide(username, await this.cache.get(username));
    } catch (err) {
      return { ok: false, category: 'lookup_failed', reason: `the account lookup for "${username}" failed (${(err as Error).message}); check NSS (getent passwd ${username})` };
    }
  }

  private decide(username: string, looked: Account | null | undefined): RunAsResolution {
    if (this.mapped) {
      const t = this.mapped.get(username);
      return t ? { ok: true, target: t } : { ok: false, category: 'unknown_user', reason: `username "${username}" is not in runAs.accounts` };
    }
    if (this.everyone) return { ok: true, target: this.everyone };
    const current = this.current;
    const rootRefused = (a: Account): RunAsResolution => ({
      ok: false,
      category: 'root_refused',
      reason: `username "${username}" is the local account ${a.name} with uid 0 and runAs.permitRoot is false: log in as an unprivileged account, or set runAs.permitRoot: true`,
    });
    if (username === current.name) {
      return current.uid === 0 && !this.permitRoot ? rootRefused(current) : { ok: true, target: { account: current, switchUser: false } };
    }
    if (current.uid !== 0) {
      return {
        ok: false,
        category: 'other_account',
        reason: `username "${username}" is not ${current.name}, and execgate runs as ${current.name} without root so it can only run commands as ${current.name}: run execgate as root, or map the username with runAs.accounts (or runAs.user) to ${current.name}`,
      };
    }
    if (!looked) {
      const why = plausibleAccountName(username) ? `getent passwd ${username} found nothing` : 'not a valid account name';
      return { ok: false, category: 'unknown_user', reason: `username "${username}" is not a local account (${why}): create the account, or map the username with runAs.accounts` };
    }
    if (looked.uid === 0 && !this.permitRoot) return rootRefused(looked);
    return { ok: true, target: { account: looked, switchUser: looked.name !== current.name } };
  }

  /** Which local accounts the keys of one shared authorized_keys file could reach. */
  reachable(): Reachable {
    if (this.mapped) return { kind: 'accounts', accounts: uniqueAccounts([...this.mapped.values()].map((t) => t.account)) };
    if (this.everyone) return { kind: 'accounts', accounts: [this.everyone.account] };
    if (this.current.uid !== 0) return { kind: 'accounts', accounts: [this.current] };
    return { kind: 'any' };
  }

  /** The accounts configured by name (for the startup log); the identity model names none. */
  targets(): RunAsTarget[] {
    if (this.mapped) return [...this.mapped.values()];
    if (this.everyone) return [this.everyone];
    return [];
  }

  /** For the startup log: what runs as what. */
  describe(): string {
    if (this.mapped) return `runAs.accounts (${[...this.mapped].map(([u, t]) => `${u}->${t.account.name}`).join(', ')})`;
    if (this.everyone) return `runAs.user (${this.everyone.account.name} for every username)`;
    return this.current.uid === 0 ? `the SSH username is the local account${this.permitRoot ? ' (root permitted)' : ', uid 0 refused'}` : `only ${this.current.name} (execgate runs without root)`;
  }
}

function uniqueAccounts(accounts: Account[]): Account[] {
  const seen = new Map<string, Account>();
  for (const a of accounts) seen.set(a.name, a);
  return [...seen.values()];
}
