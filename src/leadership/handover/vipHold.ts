import type { Logger } from '../../log.js';

export interface VipHoldOptions {
  /** Holds (true) or admits again (false) new connections on the VIP's own listener (ssh/synHold.ts). */
  hold: (on: boolean) => Promise<void>;
  /** True while the VIP is on this node. */
  vipLocal: () => boolean;
  /** The longest one hold lasts (vipHoldSeconds). */
  limitMs: number;
  /** Open connections that came in on the VIP (for the log). */
  vipConnections?: () => number;
  log?: Logger;
}

/**
 * One drain's hold on new VIP connections. While connections that came in on the VIP
 * keep it on a drained node, new ones are held in the kernel (a dropped SYN is sent
 * again by the client) rather than accepted, so a moment with none open comes; the VIP
 * then moves and they reach the new leader. A hold ends when lifted, or by itself after
 * limitMs.
 */
export class VipHold {
  /** Set from begin() until lifted: the hold being set up (resolves either way). */
  private pending: Promise<void> | null = null;
  /** When the hold took effect; null while none is in effect. */
  private since: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: VipHoldOptions) {}

  /** Starts a hold if this node has the VIP and none is on; true when one is being set up. */
  begin(): boolean {
    const { limitMs, log } = this.options;
    if (limitMs <= 0 || this.pending || !this.options.vipLocal()) return false;
    this.pending = (async () => {
      try {
        await this.options.hold(true);
      } catch (err) {
        log?.warn({ err: (err as Error).message }, 'drain: cannot hold new connections on the VIP; they are forwarded (fast) or refused (strict) while it stays here');
        this.pending = null;
        return;
      }
      this.since = Date.now();
      this.timer = setTimeout(() => void this.lift(`held for vipHoldSeconds (${limitMs / 1000} s)`), limitMs);
      this.timer.unref();
      log?.info({ vipConnections: this.options.vipConnections?.() ?? null, limitSeconds: limitMs / 1000 }, 'drain: holding new connections on the VIP until the connections on it end and it moves');
    })();
    return true;
  }

  /** Resolves once a hold begun has taken effect (or failed to). */
  async settled(): Promise<void> {
    await this.pending;
  }

  /** A hold is in effect. */
  get active(): boolean {
    return this.since !== null;
  }

  /** Ends the hold (waiting for one still being set up); a no-op when none is on. */
  async lift(why: string): Promise<void> {
    if (this.pending) await this.pending;
    this.pending = null;
    if (this.since === null) return;
    const heldMs = Date.now() - this.since;
    this.since = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      await this.options.hold(false);
      this.options.log?.info({ heldMs, why }, 'drain: new connections on the VIP are accepted again');
    } catch (err) {
      this.options.log?.error({ err: (err as Error).message, heldMs }, 'drain: could not stop holding new connections on the VIP; restart execgate if this node must serve the VIP again');
    }
  }
}
