import type { EtcdKeyValue } from '../../etcd/client.js';
import { decodeElectionValue, type ElectionMark } from './codec.js';

/** One election key, decoded. */
export interface Contender {
  key: string;
  node: string;
  mark: ElectionMark;
  createRevision: bigint;
  modRevision: bigint;
}

/**
 * What one read of the election prefix means for this node. Pure: the whole election
 * rule in one place, testable without etcd or timers.
 *
 * The leader is the candidate (not resigned) key with the lowest create revision; that
 * revision is its fencing token. Candidates only ever leave or resign and new keys
 * come last, so the token of whoever leads never decreases.
 */
export type ElectionOutcome =
  /** This node's key is gone (lease expired or revoked): fence. */
  | { kind: 'lost-key' }
  /** This node led and another candidate's key is older: its key must have been recreated; fence. */
  | { kind: 'displaced'; by: string }
  | {
      kind: 'leader';
      token: bigint;
      /** The next candidate in line, if any. */
      next: Contender | null;
      /** This node's own key (its mod revision names its handover announce). */
      mine: Contender;
      /** A node that resigned but still holds the VIP for its connections. */
      vipHeldBy: string | null;
    }
  /** This node resigned: it leads nothing; its commands finish under its lease. */
  | { kind: 'resigned'; leader: Contender | null; vipHeldBy: string | null }
  /** The oldest candidate is this node's own earlier key (it fenced itself): wait for it to expire. */
  | { kind: 'own-old-key' }
  | {
      kind: 'follower';
      leader: Contender | null;
      /** This node is the next candidate after the leader. */
      successor: boolean;
      /** The leader announced a handover: its key's mod revision names it. */
      handoverId: string | null;
      /** A node that resigned but still holds the VIP for its connections. */
      vipHeldBy: string | null;
    };

export function decodeContenders(kvs: readonly EtcdKeyValue[], electionPrefix: string): Contender[] {
  return kvs.map((kv) => {
    const value = decodeElectionValue(kv.value);
    // "<node>-<lease hex>": the key names the node when the value does not.
    const node = value.node || kv.key.slice(electionPrefix.length).replace(/-[0-9a-f]+$/, '');
    return { key: kv.key, node, mark: value.mark, createRevision: kv.createRevision, modRevision: kv.modRevision };
  });
}

export interface ElectionInput {
  /** The election prefix's keys, oldest create revision first. */
  contenders: readonly Contender[];
  /** This node's current election key. */
  myKey: string;
  /** This node's keys of earlier terms (their leases may not have expired yet). */
  oldKeys: ReadonlySet<string>;
  /** This node led before this read. */
  wasLeader: boolean;
}

export function evaluateElection({ contenders, myKey, oldKeys, wasLeader }: ElectionInput): ElectionOutcome {
  const mine = contenders.find((c) => c.key === myKey);
  if (!mine) return { kind: 'lost-key' };
  const candidates = contenders.filter((c) => c.mark.kind !== 'resigned');
  const vipHolder = contenders.find((c) => c.key !== myKey && c.mark.kind === 'resigned' && c.mark.holdsVip);
  const vipHeldBy = vipHolder?.node ?? null;
  if (mine.mark.kind === 'resigned') return { kind: 'resigned', leader: candidates[0] ?? null, vipHeldBy };
  const first = candidates[0]!; // mine is a candidate, so there is one
  if (first.key === myKey) return { kind: 'leader', token: mine.createRevision, next: candidates[1] ?? null, mine, vipHeldBy };
  if (wasLeader) return { kind: 'displaced', by: first.key };
  if (oldKeys.has(first.key)) return { kind: 'own-old-key' };
  return {
    kind: 'follower',
    leader: first,
    successor: candidates[1]?.key === myKey,
    handoverId: first.mark.kind === 'handover' ? first.modRevision.toString() : null,
    vipHeldBy,
  };
}

/** The leader's next in line said ready for this announce (the leader key's mod revision). */
export function successorReadyFor(next: Contender | null, mine: Contender): boolean {
  return next?.mark.kind === 'ready' && next.mark.handoverId === mine.modRevision.toString();
}
