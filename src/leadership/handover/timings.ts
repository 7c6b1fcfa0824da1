/**
 * The handover's timings in one place. Each was measured in the failover lab
 * (docs/failover.md) on 2 cores with a 2 s lease, VRRPv3 adverts every 0.2 s and
 * HAProxy checks every 100 ms.
 */

/** Election poll interval while a command waits at the gate for the lead, and during a handover. */
export const FAST_POLL_MS = 20;

/** The next in line polls more often than the others: it is the one that takes over. */
export const SUCCESSOR_POLL_MS = 50;

/**
 * After a load balancer was answered 404 on /leader, how long a connection it sent just
 * before may take to be accepted here (HAProxy reads the answer a moment later).
 */
export const LOAD_BALANCER_SETTLE_MS = 50;

/** How often a handover looks whether traffic has left, or the VIP's connections ended. */
export const TRAFFIC_POLL_MS = 10;

/** How often a drain looks at the running commands. */
export const DRAIN_POLL_MS = 50;

/** How long a forwarded connection may take to reach the new leader before the client is refused. */
export const FORWARD_CONNECT_TIMEOUT_MS = 2000;
