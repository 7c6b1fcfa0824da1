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
 * Every load balancer has been answered "not the leader" on /leader at least `fall`
 * times in a row since the handover began, so it has marked this server down.
 */
export class LoadBalancerProbe implements TrafficProbe {
  private readonly refusals = new Map<string, number>();
  private counting = false;

  constructor(
    private readonly balancers: readonly string[],
    private readonly fall: number,
  ) {}

  begin(): void {
    this.refusals.clear();
    this.counting = true;
  }

  /** Called by GET /leader with the caller's address and the status answered. */
  record(remoteAddress: string | undefined, status: number): void {
    if (!this.counting || !remoteAddress) return;
    const address = remoteAddress.replace(/^::ffff:/, '');
    if (!this.balancers.includes(address)) return;
    this.refusals.set(address, status === 200 ? 0 : (this.refusals.get(address) ?? 0) + 1);
  }

  gone(): boolean {
    return this.counting && this.balancers.every((b) => (this.refusals.get(b) ?? 0) >= this.fall);
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
