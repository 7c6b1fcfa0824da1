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

/** The VIP has left this node's interface (keepalived went to BACKUP or FAULT). */
export class VipProbe implements TrafficProbe {
  constructor(private readonly vipLocal: () => boolean) {}
  begin(): void {}
  gone(): boolean {
    return !this.vipLocal();
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
