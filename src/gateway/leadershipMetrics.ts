import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Leadership, LeadershipState } from '../leadership/types.js';

/** The leadership in the metrics (execgate_leader, execgate_fencing_token, transitions) and a log line per change. */
export function reportLeadership(leadership: Pick<Leadership, 'onChange'>, metrics: Metrics, log: Logger): (state: LeadershipState) => void {
  const reflect = (state: LeadershipState) => {
    metrics.leader.set(state.role === 'leader' ? 1 : 0);
    metrics.fencingToken.set(state.role === 'leader' && state.token !== null ? Number(state.token) : 0);
  };
  leadership.onChange((state) => {
    metrics.leadershipTransitions.inc({ to: state.role });
    reflect(state);
    log.info({ role: state.role, token: state.token?.toString() ?? null, leader: state.leader ?? null }, 'leadership changed');
  });
  return reflect;
}
