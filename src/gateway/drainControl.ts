import type { Logger } from '../log.js';
import type { Leadership } from '../leadership/types.js';
import type { CommandRegistry } from '../exec/registry.js';
import { DrainController } from '../leadership/handover/drain.js';
import { AllProbes, LoadBalancerProbe, SuccessorTraffic, VipProbe } from '../leadership/handover/probes.js';
import { LOAD_BALANCER_SETTLE_MS } from '../leadership/handover/timings.js';
import type { NodeRuntime } from './nodeRuntime.js';
import type { SshConnectionsView } from './sshConnections.js';

export interface DrainControl {
  /** The node's leadership with drains overlaid: what the gate, the metrics and the HTTP surface read. */
  leadership: DrainController;
  /** Records each load balancer's /leader-check (cluster with load balancers), or null. */
  leaderChecks: LoadBalancerProbe | null;
  /** The next in line tells the leader handing over when every load balancer sends it traffic. */
  successorTraffic: SuccessorTraffic | undefined;
}

/** The drain controller over the node's leadership source, with the probes that end a handover. */
export function createDrainControl(
  runtime: NodeRuntime,
  deps: {
    source: Leadership;
    registry: CommandRegistry;
    ssh: SshConnectionsView;
    audit: { cut(reason: string, connections: ReturnType<SshConnectionsView['describeConnections']>): Promise<void> };
    log: Logger;
  },
): DrainControl {
  const { registry, ssh, audit, log } = deps;
  const { vipAddress, vipLocal } = runtime;
  // A handover is over when the VIP has left (settled for one advert interval) and every
  // load balancer has stopped sending new connections here (and those it sent before
  // have reached the gate).
  const leaderChecks = runtime.loadBalancers.length
    ? new LoadBalancerProbe(runtime.loadBalancers, LOAD_BALANCER_SETTLE_MS, Date.now, (instant: number): boolean => ssh.undecidedBefore(instant))
    : null;
  const traffic = vipLocal ? new AllProbes([new VipProbe(vipLocal, runtime.vipSettleMs), ...(leaderChecks ? [leaderChecks] : [])]) : undefined;
  const leadership: DrainController = new DrainController(deps.source, {
    running: () => registry.size,
    terminate: (why) => registry.terminateAll(why),
    timeoutSeconds: runtime.drain.timeoutSeconds,
    handoverMs: runtime.drain.handoverMs,
    traffic,
    pinned: vipAddress !== null ? () => registry.countVia(vipAddress) : undefined,
    self: runtime.node,
    mode: runtime.drain.mode,
    vipConnections: vipAddress !== null ? () => ssh.openVia(vipAddress) : undefined,
    forwarded: () => ssh.forwardedCount,
    undecidedBefore: (instant) => ssh.undecidedBefore(instant),
    holdVip: vipAddress !== null && runtime.drain.vipHasListener ? (hold) => ssh.holdNewConnections(vipAddress, hold) : undefined,
    vipLocal,
    vipHoldMs: runtime.drain.vipHoldMs,
    cutConnections: (reason) => {
      const open = ssh.describeConnections(); // forwarded ones included
      log.warn({ connections: open }, `drain: cutting ${open.length} open connection(s) so the VIP can move (${reason})`);
      void audit.cut(reason, open);
      ssh.destroyConnections();
      return open.length;
    },
    log,
  });
  const successorTraffic = leaderChecks
    ? new SuccessorTraffic(runtime.loadBalancers, runtime.haproxyRise, (id) => {
        log.info({ handoverId: id }, 'handover: every load balancer sends new connections here; telling the leader');
        void leadership.announceReady(id);
      })
    : undefined;
  return { leadership, leaderChecks, successorTraffic };
}
