import type { Logger } from '../log.js';
import type { LeadershipState } from './types.js';

/**
 * The change rule every leadership source follows: listeners hear of a change of role,
 * token, leader, place in line (successor, next) or handover view; never of the
 * wording of a reason or of "since" alone.
 */
export function leadershipChanged(a: LeadershipState, b: LeadershipState): boolean {
  return a.role !== b.role || a.token !== b.token || a.leader !== b.leader || a.successor !== b.successor || a.next !== b.next || JSON.stringify(a.handover) !== JSON.stringify(b.handover);
}

/**
 * Tells listeners about state changes under that rule. A listener that throws is logged
 * and does not keep the others (or the source) from going on.
 */
export class StateEmitter {
  private readonly listeners = new Set<(state: LeadershipState) => void>();
  private last: LeadershipState | null = null;

  constructor(private readonly log?: Logger) {}

  on(listener: (state: LeadershipState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells every listener when `state` differs from the last one told; true when it did. */
  emit(state: LeadershipState): boolean {
    if (this.last !== null && !leadershipChanged(this.last, state)) return false;
    this.last = state;
    for (const listener of [...this.listeners]) {
      try {
        listener(state);
      } catch (err) {
        this.log?.error({ err: err instanceof Error ? err.message : String(err) }, 'a leadership listener failed; the others still hear of the change');
      }
    }
    return true;
  }
}
