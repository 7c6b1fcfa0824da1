export type Role = 'leader' | 'standby' | 'draining' | 'fenced';

export interface LeadershipState {
  role: Role;
  /** Fencing token of the current leadership term; null when this node does not lead. */
  token: bigint | null;
  /** Name of the known leader, when known. */
  leader?: string;
  /** When this state began (ms since epoch). */
  since: number;
  /** Why this node is not leading, for humans (/readyz, refusals). */
  reason?: string;
}

/**
 * Where leadership comes from (static, keepalived, etcd). Implementations emit every
 * change to their listeners; current() is always cheap and synchronous.
 */
export interface Leadership {
  readonly kind: string;
  current(): LeadershipState;
  onChange(listener: (state: LeadershipState) => void): () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}
