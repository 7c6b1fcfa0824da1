import type { LeadershipState } from './types.js';

/** What the gate reads: a Leadership, or the DrainController overlaid on one. */
export interface LeadershipView {
  current(): LeadershipState;
}

export type GateDecision = { admitted: true; token: bigint | null } | { admitted: false; reason: string; message: string };

/**
 * The leader gate: every command asks at the moment it would start. A node that is
 * not the leader (standby, fenced, or draining) never runs anything.
 */
export function admit(node: string, leadership: LeadershipView): GateDecision {
  const state = leadership.current();
  if (state.role === 'leader' || (state.role === 'draining' && state.handover?.side === 'leaving' && state.handover.admitting)) return { admitted: true, token: state.token };
  const leader = state.leader ? `leader is ${state.leader}${state.token !== null ? ` (token ${state.token})` : ''}` : 'no leader is known';
  return {
    admitted: false,
    reason: state.role,
    message: `execgate: ${node} is ${state.role}; ${leader}; not running`,
  };
}

/**
 * The gate for a node that may be about to lead: a standby waits up to waitMs for the
 * lead before refusing. Traffic (the VIP, HAProxy) can reach the next leader a moment
 * before its leadership does: during a drain's handover, or right after a failover.
 * Fenced and draining nodes are refused at once.
 */
export function admitWaiting(
  node: string,
  leadership: LeadershipView & { onChange(listener: (state: LeadershipState) => void): () => void; awaitLead?(): () => void },
  waitMs: number,
): Promise<GateDecision> {
  const first = admit(node, leadership);
  if (first.admitted || waitMs <= 0 || leadership.current().role !== 'standby') return Promise.resolve(first);
  return new Promise((resolve) => {
    const endWait = leadership.awaitLead?.() ?? (() => {});
    const done = () => {
      clearTimeout(timer);
      off();
      endWait();
      resolve(admit(node, leadership));
    };
    const timer = setTimeout(done, waitMs);
    const off = leadership.onChange((state) => {
      if (state.role !== 'standby') done();
    });
  });
}
