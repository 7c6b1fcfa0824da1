import type { Cluster } from '../config/cluster.js';
import type { Logger } from '../log.js';
import { errors } from '../errors.js';
import { StaticLeadership } from './static.js';
import { createEtcdLeadership } from './etcd.js';
import { VrrpLeadership } from './vrrp.js';
import type { Leadership } from './types.js';

export interface LeadershipDeps {
  node: string;
  cluster?: Cluster;
  log: Logger;
  /** The cluster's token (gateway.http.tokenFile): vrrp's peer poll sends it. */
  peerToken?: string;
}

/** Picks the leadership source: static for a single node, else the cluster file's. */
export function createLeadership({ node, cluster, log, peerToken }: LeadershipDeps): Leadership {
  const source = cluster?.leadership.source ?? 'static';
  switch (source) {
    case 'static':
      return new StaticLeadership(node);
    case 'etcd': {
      const etcd = cluster?.leadership.etcd;
      if (!cluster || !etcd) throw errors.leadershipEtcdMissing();
      return createEtcdLeadership(node, cluster.cluster, etcd, log);
    }
    case 'vrrp': {
      if (!cluster) throw errors.leadershipVrrpNeedsCluster();
      return new VrrpLeadership({ node, cluster, log, peerToken });
    }
    default:
      throw errors.leadershipSourceUnavailable(source);
  }
}
