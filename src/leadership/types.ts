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
   * For a standby: whether it is next in line for the lead (etcd: its election key is
   * the second oldest candidate); undefined where the source has no order (vrrp).
   * keepalived gives the VIP to the next in line when the leader goes, so traffic and
   * leadership move to the same node.
   */
  successor?: boolean;
  /** For a leader: the node next in line, when known (where a drain forwards connections). */
  next?: string;
  /** The planned handover this node takes part in, if any (docs/failover.md). */
  handover?: HandoverView;
}

/**
 * One view of a planned handover, from either side.
 *
 * leaving: this node drains. While `admitting` it still runs commands of connections it
 * accepted before the drain; `trafficAway` says new traffic should go elsewhere (track
 * file -254, /leader 404 once the next node is ready or the announce time passed).
 *
 * joining: this node is next in line (or already leads) while another one hands over:
 * `id` names the announce it answers (etcd: the old leader key's mod revision);
 * `vipHeldBy` names a node that resigned but keeps the VIP until the connections that
 * came in on it end (moving the VIP would reset them), so this node must not claim it.
 */
export type HandoverView =
  | {
      side: 'leaving';
      startedAt: number;
      admitting: boolean;
      trafficAway: boolean;
      successorReady?: boolean;
      /** Resigned (fast handover): since when another node is seen leading (it forwards there meanwhile). */
      nextLeadsSince?: number;
    }
  | { side: 'joining'; id?: string; vipHeldBy?: string };

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
   * Optional (etcd): give up admission at once while keeping this node's lease, under
   * which its running commands finish (the next in line leads with a larger token).
   * `holdsVip`: this node keeps the VIP for connections that came in on it; the new
   * leader must not claim it until setVipHeld(false).
   */
  resign?(holdsVip: boolean): Promise<boolean>;
  /** Optional (etcd): after resign(true), say the VIP is no longer held here. */
  setVipHeld?(held: boolean): Promise<void>;
  /**
   * Optional, for the next in line: tell the leader handing over (announce handoverId)
   * that every load balancer now sends new connections here (best effort).
   */
  announceReady?(handoverId: string): Promise<void>;
}
