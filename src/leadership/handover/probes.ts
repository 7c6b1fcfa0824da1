import type { LeadershipState } from '../types.js';
import { unmapIPv4 } from '../../address.js';

/**
 * Tells a handing-over leader when new traffic no longer reaches it, so it can release
 * the lead at once instead of waiting out the whole handover window.
 */
export interface TrafficProbe {
  /** The handover starts now: forget what was seen before. */
  begin(): void;
  /** True once neither the VIP nor any load balancer sends new connections here. */
  gone(): boolean;
}

/**
 * The VIP left this node's interface (keepalived went to FAULT) at least `settleMs`
 * ago. The next master claims it up to one advert interval later; releasing the lead
 * before that would change the track files of the standbys in the middle of their
 * VRRP election, which restarts their timers (measured: the VIP then took ~0.65 s
 * instead of ~0.07 s to arrive, and connections reset when it moved a second time).
 */
export class VipProbe implements TrafficProbe {
  private goneSince: number | null = null;

  constructor(
    private readonly vipLocal: () => boolean,
    private readonly settleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  begin(): void {
    this.goneSince = null;
  }

  gone(): boolean {
    if (this.vipLocal()) {
      this.goneSince = null;
      return false;
    }
    this.goneSince ??= this.now();
    return this.now() - this.goneSince >= this.settleMs;
  }
}

/**
 * Every load balancer has been answered "no new traffic" on /leader (404, which with
 * `http-check disable-on-404` takes the server out of balancing at once and keeps its
 * sessions; or 503) since the handover began, at least `settleMs` ago (a connection
 * sent just before the answer arrived has been accepted by then), and every
 * connection accepted until then has reached its command (or closed).
 */
export class LoadBalancerProbe implements TrafficProbe {
  /** When each load balancer was first refused without a 200 since. */
  private readonly refusedAt = new Map<string, number>();
  private counting = false;

  constructor(
    private readonly balancers: readonly string[],
    private readonly settleMs: number,
    private readonly now: () => number = Date.now,
    /** True while a connection accepted before this instant has not asked for a command yet. */
    private readonly connectionsPendingBefore: (instant: number) => boolean = () => false,
  ) {}

  begin(): void {
    this.refusedAt.clear();
    this.counting = true;
  }

  /** Called by GET /leader with the caller's address and the status answered. */
  record(remoteAddress: string | undefined, status: number): void {
    if (!this.counting || !remoteAddress) return;
    const address = unmapIPv4(remoteAddress);
    if (!this.balancers.includes(address)) return;
    if (status === 200) this.refusedAt.delete(address);
    else if (!this.refusedAt.has(address)) this.refusedAt.set(address, this.now());
  }

  gone(): boolean {
    if (!this.counting) return false;
    let last = 0;
    for (const b of this.balancers) {
      const at = this.refusedAt.get(b);
      if (at === undefined || this.now() - at < this.settleMs) return false;
      last = Math.max(last, at);
    }
    return !this.connectionsPendingBefore(last + this.settleMs);
  }
}

/**
 * The next in line during a handover: once every load balancer has been answered 200
 * on /leader `rise` times in a row since the announce (HAProxy marks a DOWN server UP
 * after `rise` passing checks; a "stopping" one after one), it says so, and the leader
 * stops taking new connections without waiting out its announce.
 */
export class SuccessorTraffic {
  private handoverId: string | null = null;
  /** 200s answered in a row to each load balancer during this handover. */
  private readonly passes = new Map<string, number>();
  private told = false;

  constructor(
    private readonly balancers: readonly string[],
    private readonly rise: number,
    private readonly ready: (handoverId: string) => void,
  ) {}

  /** Called by GET /leader with the caller's address, the status answered and the state it was based on. */
  record(remoteAddress: string | undefined, status: number, state: LeadershipState): void {
    const id = state.handover?.side === 'joining' ? state.handover.id : undefined;
    if (state.role !== 'standby' || state.successor !== true || !id) return;
    if (id !== this.handoverId) {
      this.handoverId = id;
      this.passes.clear();
      this.told = false;
    }
    if (!remoteAddress) return;
    const address = unmapIPv4(remoteAddress);
    if (!this.balancers.includes(address)) return;
    this.passes.set(address, status === 200 ? (this.passes.get(address) ?? 0) + 1 : 0);
    if (!this.told && this.balancers.every((b) => (this.passes.get(b) ?? 0) >= this.rise)) {
      this.told = true;
      this.ready(id);
    }
  }
}

export class AllProbes implements TrafficProbe {
  constructor(private readonly probes: readonly TrafficProbe[]) {}
  begin(): void {
    for (const p of this.probes) p.begin();
  }
  gone(): boolean {
    return this.probes.every((p) => p.gone());
  }
}
