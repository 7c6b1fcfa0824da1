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
  /**
   * A draining leader handing over: it still holds the lease and admits commands, while
   * its /leader and track file already send new traffic to the next node.
   */
  handover?: boolean;
  /**
   * For a standby: whether it is next in line for the lead (etcd: its election key is
   * the second oldest); undefined where the source has no order (vrrp). keepalived
   * gives the VIP to the next in line when the leader goes, so traffic and leadership
   * move to the same node.
   */
  successor?: boolean;
  /** For a standby: the known leader announced a handover (etcd), so the next in line takes traffic. */
  leaderHandover?: boolean;
  /** For a standby: which announce it saw (etcd: the leader key's mod revision); see announceReady. */
  handoverId?: string;
  /**
   * For a leader handing over: the next in line said every load balancer has marked it
   * UP, so this leader can stop taking new connections at once.
   */
  successorReady?: boolean;
  /** For a leader handing over: when the handover began (ms since epoch). */
  handoverAt?: number;
}

/**
 * Where leadership comes from (static, keepalived, etcd). Implementations emit every
 * change to their listeners; current() is always cheap, synchronous and exact at the
 * moment it is called (the gate calls it for every command, so an etcd leader past
 * its fence deadline must already answer "fenced" here, before any timer fired).
 *
 * The gateway reacts to states: on "fenced" it SIGKILLs every running command at once.
 */
export interface Leadership {
  readonly kind: string;
  current(): LeadershipState;
  onChange(listener: (state: LeadershipState) => void): () => void;
  start(): Promise<void>;
  /** Shut down; a leader hands over first (etcd: revoke its lease; track file -254). */
  stop(): Promise<void>;
  /**
   * Give leadership away now (after a drain) and do not campaign again until
   * rejoin(); resolves once another node can take over.
   */
  release(): Promise<void>;
  /** Campaign again (as standby first) after release(). */
  rejoin(): Promise<void>;
  /**
   * Optional: a command is waiting at the gate for this node to lead; the source may
   * look more often until the returned function is called.
   */
  awaitLead?(): () => void;
  /** Optional: tell the other nodes this leader is handing over (best effort). */
  announceHandover?(): Promise<void>;
  /**
   * Optional, for the next in line: tell the leader handing over (announce handoverId)
   * that every load balancer now sends new connections here (best effort).
   */
  announceReady?(handoverId: string): Promise<void>;
}
