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
 *        over after that; the next in line otherwise
 *   503  down (HAProxy closes its sessions): everyone else, and any unhealthy node
 */
export function leaderCheckStatus(state: LeadershipState, healthy: boolean, announceMs: number, now = Date.now()): 200 | 404 | 503 {
  if (!healthy) return 503;
  if (state.role === 'leader') return 200;
  if (state.role === 'draining' && state.handover === true) {
    return state.successorReady !== true && now - (state.handoverAt ?? now) < announceMs ? 200 : 404;
  }
  if (state.role === 'standby' && state.successor === true) return state.leaderHandover === true ? 200 : 404;
  return 503;
}
