/**
 * The fence of one etcd lease, on the monotonic clock: the instant after which this node
 * must not act on the lease any more. It is the send time of the last acknowledged
 * renewal (or of the grant) + the TTL etcd reported − margin: etcd can only expire the
 * lease after that instant, so a node that stops acting there has stopped before anybody
 * else can take over. One timer fires at the deadline unless a renewal moved it.
 */
export class LeaseFence {
  private deadline = Number.NEGATIVE_INFINITY;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly now: () => number,
    private readonly marginMs: number,
  ) {}

  /** The deadline (monotonic ms); -Infinity without a lease. */
  get at(): number {
    return this.deadline;
  }

  passed(): boolean {
    return this.now() >= this.deadline;
  }

  /** When etcd may have expired the lease at the latest. */
  get expiresBy(): number {
    return this.deadline + this.marginMs;
  }

  /** A renewal sent at `sentAt` was answered with `ttlSeconds`; moves the deadline later, never earlier. */
  extend(sentAt: number, ttlSeconds: number): boolean {
    const deadline = sentAt + ttlSeconds * 1000 - this.marginMs;
    if (deadline <= this.deadline) return false;
    this.deadline = deadline;
    return true;
  }

  /**
   * (Re)arms the timer: at the deadline, `onPassed` runs if `guards()` still says the
   * fence matters (a leader, or a node whose commands run under the lease).
   */
  arm(guards: () => boolean, onPassed: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = null;
        if (!guards()) return;
        if (this.passed()) onPassed();
        else this.arm(guards, onPassed);
      },
      Math.max(0, this.deadline - this.now()),
    );
  }

  /** The lease is gone or given up: no deadline, no timer. */
  reset(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.deadline = Number.NEGATIVE_INFINITY;
  }
}
