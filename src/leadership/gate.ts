import type { LeadershipState } from './types.js';

/** What the gate reads: a Leadership, or the DrainController overlaid on one. */
export interface LeadershipView {
  current(): LeadershipState;
}

export type GateDecision =
  | { admitted: true; token: bigint | null }
  | { admitted: false; reason: string; message: string };

/**
 * The leader gate: every command asks at the moment it would start. A node that is
 * not the leader (standby, fenced, or draining) never runs anything.
 */
export function admit(node: string, leadership: LeadershipView): GateDecision {
  const state = leadership.current();
  if (state.role === 'leader') return { admitted: true, token: state.token };
  const leader = state.leader
    ? `leader is ${state.leader}${state.token !== null ? ` (token ${state.token})` : ''}`
    : 'no leader is known';
  return {
    admitted: false,
    reason: state.role,
    message: `execgate: ${node} is ${state.role}; ${leader}; not running`,
  };
}

/** EX_TEMPFAIL: the scheduler may retry elsewhere or later. */
export const EXIT_TEMPFAIL = 75;
