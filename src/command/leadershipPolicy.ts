import type { Logger } from '../log.js';
import type { LeadershipState } from '../leadership/types.js';
import type { CommandRegistry } from '../exec/registry.js';

/** What running commands do when this node's leadership changes; returns an unsubscribe. */
export function followLeadership(
  leadership: { current(): LeadershipState; onChange(listener: (state: LeadershipState) => void): () => void },
  options: {
    registry: Pick<CommandRegistry, 'size' | 'terminateAll'>;
    /** onLeadershipLoss "finish" (vrrp/static only): commands outlive a lost lead. */
    finishOnLoss: boolean;
    log: Logger;
  },
): () => void {
  const { registry, finishOnLoss, log } = options;
  // Fencing: a node that lost (or may have lost) its lease SIGKILLs every running command at once.
  const offFence = leadership.onChange((state) => {
    if (state.role === 'fenced') void registry.terminateAll('fenced: lease lost', true);
  });
  // Lost the lead without a fence (vrrp/static; etcd always): terminate with grace unless onLeadershipLoss is "finish".
  let leading = ['leader', 'draining'].includes(leadership.current().role);
  const offLoss = leadership.onChange((state) => {
    const wasLeading = leading;
    leading = state.role === 'leader' || state.role === 'draining';
    if (wasLeading && state.role === 'standby' && !finishOnLoss && registry.size > 0) {
      log.warn({ running: registry.size }, 'leadership lost: terminating running commands');
      void registry.terminateAll('leadership lost');
    }
  });
  return () => {
    offFence();
    offLoss();
  };
}
