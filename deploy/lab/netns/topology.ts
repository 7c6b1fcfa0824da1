/** The lab's topologies, hosts, addresses and ports (every address from 198.18.0.0/15). */

/**
 * The lease TTL unless --ttl says otherwise: execgate's own default. With 2 s (what CI
 * uses, for quick crash failovers) a new leader fenced itself in 2 of 5 vrrp-etcd
 * rollings: the connections a VIP drain held arrive together, and on 2 cores shared by
 * every lab process the lease keepalive came back 0.8-1.7 s late (docs/lab.md).
 */
export const LAB_DEFAULT_TTL_SECONDS = 5;

export type Topology = 'vrrp' | 'vrrp-etcd' | 'haproxy-etcd';
/** leadership.handover of the cluster file (etcd topologies only). */
export type Handover = 'fast' | 'strict';
export const HANDOVERS: Handover[] = ['fast', 'strict'];
export const TOPOLOGIES: Topology[] = ['vrrp', 'vrrp-etcd', 'haproxy-etcd'];

/** A gateway host: its node name, address and keepalived priority. */
export interface NodeSpec {
  name: string;
  address: string;
  priority: number;
}

export const VIP = '198.18.0.100';
export const CLIENT = { name: 'client', address: '198.18.0.10' };
export const LB = { name: 'lb', address: '198.18.0.20' };
export const GATEWAYS: NodeSpec[] = [
  { name: 'gw1', address: '198.18.0.11', priority: 150 },
  { name: 'gw2', address: '198.18.0.12', priority: 140 },
  { name: 'gw3', address: '198.18.0.13', priority: 130 },
];
export const SSH_PORT = 2222;
export const HTTP_PORT = 9422;

export interface Target {
  host: string;
  port: number;
}

/** Where the workload connects: the VIP, or HAProxy's address. */
export function targetOf(topology: Topology): Target {
  return topology === 'haproxy-etcd' ? { host: LB.address, port: 22 } : { host: VIP, port: 22 };
}
