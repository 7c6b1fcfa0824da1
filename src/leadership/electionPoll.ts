import { FAST_POLL_MS, SUCCESSOR_POLL_MS } from './handover/timings.js';

export interface PollSituation {
  /** The configured interval (ttl/8, at most 250 ms, by default). */
  baseMs: number;
  /** A command waits at this node's gate for the lead. */
  waitingForLead: boolean;
  /** A handover is under way: this leader's, or the one this node takes over. */
  handover: boolean;
  /** This node is next in line. */
  successor: boolean;
}

/** How long until the next read of the election prefix: fast where a lead is about to move. */
export function nextElectionPollMs(s: PollSituation): number {
  const soon = s.waitingForLead || s.handover ? FAST_POLL_MS : s.successor ? SUCCESSOR_POLL_MS : Infinity;
  return Math.min(s.baseMs, soon);
}
