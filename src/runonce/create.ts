import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { connectEtcd } from '../etcd/connect.js';
import { EtcdClaimStore } from './etcdClaimStore.js';
import { RunOnceCoordinator } from './coordinator.js';

/** The run-once coordinator for this node, or null when runOnce is off. */
export function createRunOnce(config: Config, node: string, log: Logger, metrics: Metrics): { coordinator: RunOnceCoordinator; close: () => Promise<void> } | null {
  const settings = config.runOnce;
  if (!settings.enabled || !settings.etcd) return null;
  const client = connectEtcd(settings.etcd, { node, key: 'runOnce.etcd', requestTimeoutMs: 5000 }); // a burst of starts can stall a gateway for seconds: waiting beats refusing
  const store = new EtcdClaimStore(client, settings.retentionSeconds, settings.livenessTtlSeconds, log);
  const coordinator = new RunOnceCoordinator({
    node,
    prefix: settings.etcd.prefix,
    store,
    skipFast: settings.skipFast,
    retentionMs: settings.retentionSeconds * 1000,
    pollMs: settings.pollMs,
    log,
    metrics,
  });
  log.info({ endpoints: settings.etcd.endpoints, skipFast: settings.skipFast }, 'run-once mode: steps are claimed in etcd; the leader gate is not used');
  return { coordinator, close: () => store.close() };
}
