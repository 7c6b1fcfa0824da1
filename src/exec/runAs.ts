import { currentAccount, lookupAccount, type Account } from './account.js';
import { errors } from '../errors.js';

export interface RunAsTarget {
  account: Account;
  /** True when the command must switch to another uid (setpriv). */
  switchUser: boolean;
}

/**
 * Which local account an SSH username runs as. Root may run commands as any listed
 * account; a non-root gateway only as itself (switching users needs privileges).
 */
export class RunAsPolicy {
  private readonly byUsername: Map<string, RunAsTarget> | null;
  private readonly fallback: RunAsTarget;

  constructor(config: { user?: string; accounts?: Record<string, string> }) {
    const current = currentAccount();
    const target = (name: string | undefined, key: string): RunAsTarget => {
      if (!name || name === current.name) return { account: current, switchUser: false };
      if (current.uid !== 0) throw errors.runAsNeedsRoot(name, current.name, key);
      return { account: lookupAccount(name, key), switchUser: true };
    };
    this.fallback = target(config.user, 'runAs.user');
    this.byUsername = config.accounts
      ? new Map(Object.entries(config.accounts).map(([user, local]) => [user, target(local, `runAs.accounts.${user}`)]))
      : null;
  }

  /** The target for an SSH username, or null when the username is not allowed. */
  resolve(username: string): RunAsTarget | null {
    if (!this.byUsername) return this.fallback;
    return this.byUsername.get(username) ?? null;
  }

  /** Every account commands may run as (for the startup warning about root). */
  targets(): RunAsTarget[] {
    return this.byUsername ? [...this.byUsername.values()] : [this.fallback];
  }
}
