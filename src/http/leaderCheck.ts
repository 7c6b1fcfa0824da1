import type { LeadershipState } from '../leadership/types.js';

/**
 * What GET /leader answers, for HAProxy's `option httpchk` with `http-check
 * disable-on-404` (`balance first`):
 *
 *   200  send new connections here: the leader; the next in line while the leader
 *        announces its handover (its gate waits for the lead); a leader handing over
 *        until the next in line is UP at every load balancer (it says so in etcd:
 *        successorReady) or `announceMs` passed, so there is always a server to use
 *   404  no new connections, keep the sessions (HAProxy "stopping"): a leader handing
 *        over after that, a node that resigned while its commands and the connections
 *        it forwards finish; the next in line otherwise
 *   503  down (HAProxy closes its sessions): everyone else, and any unhealthy node
 */
export function leaderCheckStatus(state: LeadershipState, healthy: boolean, announceMs: number, now = Date.now()): 200 | 404 | 503 {
  if (!healthy) return 503;
  if (state.role === 'leader') return 200;
  const handover = state.handover;
  if (state.role === 'draining' && handover?.side === 'leaving') {
    // Still admitting (strict handover): keep traffic until the next node is ready.
    if (handover.admitting && handover.successorReady !== true && now - handover.startedAt < announceMs) return 200;
    return 404; // resigned, or traffic moving: no new connections, keep the sessions
  }
  if (state.role === 'standby' && state.successor === true) return handover?.side === 'joining' && handover.id ? 200 : 404;
  return 503;
}
