import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Cluster } from '../config/cluster.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { resolveServerToken } from '../http/token.js';
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

/** Dispatch-script replication of one cluster node (leadership.scriptReplication); null for a single gateway. */
export function createScriptReplication(deps: { config: Config; cluster: Cluster | undefined; node: string; log: Logger; metrics: Metrics }): ScriptReplication | null {
  const { config, cluster, node, log, metrics } = deps;
  if (!cluster || cluster.nodes.length < 2) return null;
  const settings = cluster.leadership.scriptReplication;
  if (!settings.enabled) {
    const noop = async () => {};
    return { port: { afterUpload: noop, afterRemove: noop, whyMissing: () => DISABLED_WHY }, stop: () => {} };
  }
  const token = resolveServerToken(config.http);
  if (token === undefined) {
    log.warn(
      'leadership.scriptReplication is on but there is no gateway.http.tokenFile (or http.token): dispatch scripts are neither sent to nor accepted from peers; set the same token file on every node',
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
