/** Counts things per key with a cap per key and a total cap. */
export class KeyedCounter {
  private readonly counts = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerKey: number,
  ) {}

  /** Takes a slot, or says which cap stopped it. */
  tryAcquire(key: string): { ok: true; release: () => void } | { ok: false; limit: 'total' | 'perKey' } {
    const current = this.counts.get(key) ?? 0;
    if (this.total >= this.maxTotal) return { ok: false, limit: 'total' };
    if (current >= this.maxPerKey) return { ok: false, limit: 'perKey' };
    this.counts.set(key, current + 1);
    this.total++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const n = (this.counts.get(key) ?? 1) - 1;
        if (n <= 0) this.counts.delete(key);
        else this.counts.set(key, n);
      },
    };
  }

  get size(): number {
    return this.total;
  }
}

export interface AuthFailurePolicy {
  /** Failures allowed per key within the window before blocking starts. */
  threshold: number;
  windowSeconds: number;
  baseBlockSeconds: number;
  maxBlockSeconds: number;
  /** A looser cap for one source over all its keys and usernames. */
  perSourceThreshold: number;
}

interface FailureRecord {
  failures: number[];
  blockedUntil: number;
  strikes: number;
}

/**
 * Exponential backoff after repeated authentication failures, keyed by source
 * address AND a credential: the offered key together with the username it was
 * offered for, or the username alone when the username itself is refused. A
 * misconfigured job blocks only its own key and username, not the scheduler's other
 * jobs that share the source address, nor the same key under its right username.
 */
export class AuthFailureLimiter {
  private readonly records = new Map<string, FailureRecord>();

  constructor(
    private readonly policy: AuthFailurePolicy,
    private readonly now: () => number = Date.now,
  ) {}

  private record(key: string): FailureRecord {
    let r = this.records.get(key);
    if (!r) {
      r = { failures: [], blockedUntil: 0, strikes: 0 };
      this.records.set(key, r);
    }
    return r;
  }

  /** Seconds left in a block for this source+credential (0 when allowed). */
  blockedFor(source: string, credential: string): number {
    const t = this.now();
    const until = Math.max(this.records.get(`${source}|${credential}`)?.blockedUntil ?? 0, this.records.get(`${source}|*`)?.blockedUntil ?? 0);
    return until > t ? Math.ceil((until - t) / 1000) : 0;
  }

  fail(source: string, credential: string): void {
    this.count(`${source}|${credential}`, this.policy.threshold);
    this.count(`${source}|*`, this.policy.perSourceThreshold);
    if (this.records.size > 100_000) this.prune();
  }

  private count(key: string, threshold: number): void {
    const t = this.now();
    const r = this.record(key);
    const windowStart = t - this.policy.windowSeconds * 1000;
    r.failures = r.failures.filter((f) => f > windowStart);
    r.failures.push(t);
    if (r.failures.length > threshold) {
      const seconds = Math.min(this.policy.maxBlockSeconds, this.policy.baseBlockSeconds * 2 ** r.strikes);
      r.strikes++;
      r.blockedUntil = t + seconds * 1000;
      r.failures = [];
    }
  }

  succeed(source: string, credential: string): void {
    this.records.delete(`${source}|${credential}`);
  }

  private prune(): void {
    const t = this.now();
    const windowStart = t - this.policy.windowSeconds * 1000;
    for (const [k, r] of this.records) {
      if (r.blockedUntil < t && r.failures.every((f) => f <= windowStart)) this.records.delete(k);
    }
  }
}
