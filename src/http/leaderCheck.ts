import type { LeadershipState } from '../leadership/types.js';

/**
 * What GET /leader answers, for HAProxy's `option httpchk` with `http-check
 * disable-on-404` (`balance first`):
 *
 *   200  send new connections here: the leader; the next in line while the leader
 *        announces its handover (its gate waits for the lead); a leader handing over
 *        during its first `announceMs`, so the next in line is UP before this one leaves
 *   404  no new connections, keep the sessions (HAProxy "stopping"): a leader handing
 *        over after `announceMs`; the next in line otherwise (a 404 server turns UP on
 *        one 200, without `rise` checks)
 *   503  down (HAProxy closes its sessions): everyone else, and any unhealthy node
 */
export function leaderCheckStatus(state: LeadershipState, healthy: boolean, announceMs: number, now = Date.now()): 200 | 404 | 503 {
  if (!healthy) return 503;
  if (state.role === 'leader') return 200;
  if (state.role === 'draining' && state.handover === true) return now - (state.handoverAt ?? now) < announceMs ? 200 : 404;
  if (state.role === 'standby' && state.successor === true) return state.leaderHandover === true ? 200 : 404;
  return 503;
}
