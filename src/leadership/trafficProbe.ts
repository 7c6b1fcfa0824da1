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
 * sessions; or 503) since the handover began, at least `settleMs` ago, so connections
 * it sent just before have reached their command.
 */
export class LoadBalancerProbe implements TrafficProbe {
  /** When each load balancer was first refused without a 200 since. */
  private readonly refusedAt = new Map<string, number>();
  private counting = false;

  constructor(
    private readonly balancers: readonly string[],
    private readonly settleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  begin(): void {
    this.refusedAt.clear();
    this.counting = true;
  }

  /** Called by GET /leader with the caller's address and the status answered. */
  record(remoteAddress: string | undefined, status: number): void {
    if (!this.counting || !remoteAddress) return;
    const address = remoteAddress.replace(/^::ffff:/, '');
    if (!this.balancers.includes(address)) return;
    if (status === 200) this.refusedAt.delete(address);
    else if (!this.refusedAt.has(address)) this.refusedAt.set(address, this.now());
  }

  gone(): boolean {
    if (!this.counting) return false;
    return this.balancers.every((b) => {
      const at = this.refusedAt.get(b);
      return at !== undefined && this.now() - at >= this.settleMs;
    });
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
