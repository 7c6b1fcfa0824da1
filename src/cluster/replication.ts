import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Cluster } from '../config/cluster.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { ScriptReceiver } from './scriptReceiver.js';
import { ScriptReplicator, type ScriptReplicaPort } from './scriptReplica.js';

export interface ScriptReplication {
  /** What sessions call (src/command/). */
  port: ScriptReplicaPort;
  /** What /peer/dispatch-script writes through; absent when replication is off. */
  receiver?: ScriptReceiver;
  stop(): void;
}

const DISABLED_WHY = 'leadership.scriptReplication.enabled is false in the cluster file, so an upload stays on the node that received it';

/**
 * Dispatch-script replication of one cluster node (leadership.scriptReplication); null for a
 * single gateway. `token` is the cluster's token (gateway.http.tokenFile), read by the caller.
 */
export function createScriptReplication(deps: { config: Config; cluster: Cluster | undefined; node: string; token: string | undefined; log: Logger; metrics: Metrics }): ScriptReplication | null {
  const { config, cluster, node, token, log, metrics } = deps;
  if (!cluster || cluster.nodes.length < 2) return null;
  const settings = cluster.leadership.scriptReplication;
  if (!settings.enabled) {
    const noop = async () => {};
    return { port: { afterUpload: noop, afterRemove: noop, whyMissing: () => DISABLED_WHY }, stop: () => {} };
  }
  if (token === undefined) {
    log.warn(
      { nodes: cluster.nodes.length, fix: 'set gateway.http.tokenFile in the cluster file (install.sh writes /etc/execgate/http-token: copy the same file to every node) and restart each gateway' },
      "NO CLUSTER TOKEN: leadership.scriptReplication is on in a cluster of several nodes but gateway.http.tokenFile (or http.token) is not set, so Rundeck's dispatch scripts are neither sent to nor accepted from peers and a failover between upload and exec fails the step. Fix: put the cluster's token in gateway.http.tokenFile, the same file on every node",
    );
  }
  if (!config.http.enabled) {
    log.warn('leadership.scriptReplication is on but http.enabled is false: peers cannot send dispatch-script copies to this node');
  }
  const receiver = new ScriptReceiver({
    node,
    directories: settings.directories,
    maxBytes: settings.maxBytes,
    markerDir: join(config.stateDir ?? cluster.stateDir, `script-replicas-${node}`),
    log,
  });
  const replicator = new ScriptReplicator({
    node,
    peers: cluster.nodes.filter((n) => n.name !== node).map((n) => ({ name: n.name, url: `http://${n.address}:${n.httpPort}` })),
    token,
    maxBytes: settings.maxBytes,
    timeoutMs: settings.timeoutMs,
    directories: settings.directories,
    log,
    metrics,
  });
  receiver.start();
  return {
    port: {
      afterUpload: (path, uid) => replicator.afterUpload(path, uid),
      afterRemove: (path, uid) => replicator.afterRemove(path, uid),
      whyMissing: (path) => receiver.whyMissing(path),
    },
    receiver,
    stop: () => receiver.stop(),
  };
}
