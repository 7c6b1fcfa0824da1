import type { Leadership } from './types.js';

export type GateDecision =
  | { admitted: true; token: bigint | null }
  | { admitted: false; reason: string; message: string };

/**
 * The leader gate: every command asks at the moment it would start. A node that is
 * not the leader never runs anything.
 */
export function admit(node: string, leadership: Leadership): GateDecision {
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
