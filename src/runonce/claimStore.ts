/** What a claim records; exit is set when the winner finished. */
export interface ClaimRecord {
  node: string;
  start: string;
  end?: string;
  exit?: number;
  /** The claimer never learned that its claim landed (etcd timed out), so it did not run the step. */
  abandoned?: boolean;
}

export type ClaimResult = { won: true; token: bigint } | { won: false; token: bigint; record: ClaimRecord };

export interface ClaimState {
  token: bigint;
  record: ClaimRecord;
  /** The winner's node still holds its liveness lease. */
  winnerAlive: boolean;
}

/**
 * Where run-once claims live (etcd in production, memory in unit tests). A claim is
 * created only if absent and never released early: at most once per key.
 */
export interface ClaimStore {
  claim(key: string, record: ClaimRecord): Promise<ClaimResult>;
  finish(key: string, record: ClaimRecord): Promise<void>;
  /** Ends a claim this node may or may not hold (its request timed out): only if the key still holds `mine`. */
  abandon(key: string, mine: ClaimRecord, final: ClaimRecord): Promise<void>;
  read(key: string): Promise<ClaimState | null>;
  close(): Promise<void>;
}

/** For unit tests: one shared map plays the etcd cluster. */
export class MemoryClaimStore implements ClaimStore {
  private static revision = 0n;
  constructor(private readonly data: Map<string, { token: bigint; record: ClaimRecord; alive: boolean }>) {}

  async abandon(key: string, mine: ClaimRecord, final: ClaimRecord): Promise<void> {
    const existing = this.data.get(key);
    if (existing && JSON.stringify(existing.record) === JSON.stringify(mine)) this.data.set(key, { ...existing, record: final, alive: false });
  }

  async claim(key: string, record: ClaimRecord): Promise<ClaimResult> {
    const existing = this.data.get(key);
    if (existing) return { won: false, token: existing.token, record: existing.record };
    const token = ++MemoryClaimStore.revision;
    this.data.set(key, { token, record, alive: true });
    return { won: true, token };
  }

  async finish(key: string, record: ClaimRecord): Promise<void> {
    const e = this.data.get(key);
    if (e) this.data.set(key, { ...e, record, alive: false });
  }

  async read(key: string): Promise<ClaimState | null> {
    const e = this.data.get(key);
    return e ? { token: e.token, record: e.record, winnerAlive: e.alive } : null;
  }

  /** Simulates the winner's node dying (its liveness lease expires). */
  killWinner(key: string): void {
    const e = this.data.get(key);
    if (e) e.alive = false;
  }

  async close(): Promise<void> {}
}
