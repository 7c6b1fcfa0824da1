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
 *        over after that; a node that resigned (it forwards new connections to the new
 *        leader) once the new leader has led for announceMs; the next in line otherwise
 *   503  down (HAProxy closes its sessions): everyone else, and any unhealthy node
 */
export function leaderCheckStatus(state: LeadershipState, healthy: boolean, announceMs: number, now = Date.now()): 200 | 404 | 503 {
  if (!healthy) return 503;
  if (state.role === 'leader') return 200;
  const handover = state.handover;
  if (state.role === 'draining' && handover?.side === 'leaving') {
    // Still admitting (strict handover): keep traffic until the next node is ready.
    if (handover.admitting && !handover.trafficAway) return 200; // fast handover, before resigning: it forwards new connections
    if (handover.admitting) return handover.successorReady !== true && now - handover.startedAt < announceMs ? 200 : 404;
    // Resigned (fast handover): it forwards to the new leader, so it keeps taking traffic
    // until every load balancer has had time to mark the new leader UP.
    const since = handover.nextLeadsSince;
    return since !== undefined && now - since >= announceMs ? 404 : 200;
  }
  if (state.role === 'standby' && state.successor === true) return handover?.side === 'joining' && handover.id ? 200 : 404;
  return 503;
}
