import { dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Cluster } from '../config/cluster.js';
import { unmapIPv4 } from '../address.js';
import { hostProbes } from '../leadership/keepalived/probes.js';
import { POSTURE_FILE } from '../ssh/algorithmPosture.js';
import type { ForwardTo } from '../ssh/server.js';

/** What this node's place in a cluster (or its being alone) means for the gateway, derived once from the config. */
export interface NodeRuntime {
  node: string;
  /** The cluster file, or undefined for a single gateway. */
  cluster: Cluster | undefined;
  /** Where leadership comes from; undefined for a single gateway. */
  source: Cluster['leadership']['source'] | undefined;
  /** The VIP's address, or null for a single gateway. */
  vipAddress: string | null;
  /** Cluster peers (node addresses, the VIP): they forward clients during a drain (PROXY v2 header first) and also connect directly. */
  peerProxies: string[];
  /** How long a standby waits for the lead before refusing (0: refuse at once). */
  gateWaitMs: number;
  /** keepalived follows the leader through this file (vrrp and etcd sources), or null. */
  trackFile: string | null;
  /** In a cluster an unhealthy leader hands over (a single node has nobody to hand over to). */
  stepsDownWhenUnhealthy: boolean;
  /** onLeadershipLoss "finish": commands outlive a lost lead (vrrp/static only; etcd always terminates). */
  finishOnLeadershipLoss: boolean;
  /** True while the VIP is on this node (cluster only). */
  vipLocal: (() => boolean) | undefined;
  /** How long the VIP must stay away before a handover counts it gone (one advert interval). */
  vipSettleMs: number;
  loadBalancers: readonly string[];
  /** Consecutive /leader-check successes haproxy needs (the successor's "every load balancer sends here"). */
  haproxyRise: number;
  /** How long /leader-check says "leader" before the new leader has traffic (rise x inter + 100 ms). */
  handoverAnnounceMs: number;
  drain: {
    timeoutSeconds: number;
    handoverMs: number;
    /** Fast handover (etcd): admission moves at once, running commands finish here, new connections are forwarded. */
    mode: 'fast' | 'strict';
    vipHoldMs: number;
    /** Only a VIP with a listener of its own can be held without holding the node's address too. */
    vipHasListener: boolean;
  };
  /** Where the legacy-algorithm posture is kept (per node in a cluster: nodes of a lab on one host share the stateDir). */
  posturePath: string;
  /** Where new connections go during a drain (cluster only). */
  forwardTo(drain: { forwardTarget(): string | null }): ForwardTo | undefined;
}

/**
 * During a fast handover (and after it, until undrain) new SSH connections go to the new
 * leader, or before it leads to the node next in line. Connections from a peer were
 * forwarded already and stay here, so a connection never loops between nodes.
 */
function forwardDuringDrain(cluster: Cluster, drain: { forwardTarget(): string | null }, peerAddresses: ReadonlySet<string>): ForwardTo {
  return (socket) => {
    const name = drain.forwardTarget();
    if (!name) return null;
    if (peerAddresses.has(unmapIPv4(socket.remoteAddress ?? ''))) return null;
    const target = cluster.nodes.find((n) => n.name === name);
    return target ? { host: target.address, port: target.sshPort, name } : null;
  };
}

export function nodeRuntime(config: Config, node: string, cluster?: Cluster): NodeRuntime {
  const source = cluster?.leadership.source;
  const peerAddresses = new Set(cluster?.nodes.map((n) => n.address) ?? []);
  return {
    node,
    cluster,
    source,
    vipAddress: cluster?.vip.address ?? null,
    peerProxies: cluster ? [...peerAddresses, cluster.vip.address] : [],
    gateWaitMs: cluster?.leadership.gateWaitMs ?? 0,
    trackFile: cluster && (source === 'vrrp' || source === 'etcd') ? cluster.trackFile : null,
    stepsDownWhenUnhealthy: source === 'etcd' || source === 'vrrp',
    finishOnLeadershipLoss: source !== 'etcd' && cluster?.leadership.onLeadershipLoss === 'finish',
    vipLocal: cluster ? hostProbes(cluster).vipLocal : undefined,
    vipSettleMs: (cluster?.vrrp.advertInterval ?? 0) * 1000,
    loadBalancers: cluster?.loadBalancers ?? [],
    haproxyRise: cluster?.haproxy.rise ?? 0,
    handoverAnnounceMs: cluster ? cluster.haproxy.rise * cluster.haproxy.interMs + 100 : 0,
    drain: {
      timeoutSeconds: config.drainTimeoutSeconds ?? cluster?.leadership.drainTimeoutSeconds ?? 600,
      handoverMs: cluster && cluster.leadership.source !== 'static' ? cluster.leadership.handoverMs : 0,
      mode: source === 'etcd' ? (cluster?.leadership.handover ?? 'fast') : 'strict',
      vipHoldMs: (cluster?.leadership.vipHoldSeconds ?? 0) * 1000,
      vipHasListener: cluster?.vip.bind === 'nonlocal',
    },
    posturePath: join(config.stateDir ?? cluster?.stateDir ?? dirname(config.audit.path), cluster ? POSTURE_FILE.replace('.json', `-${node}.json`) : POSTURE_FILE),
    forwardTo: (drain) => (cluster ? forwardDuringDrain(cluster, drain, peerAddresses) : undefined),
  };
}
