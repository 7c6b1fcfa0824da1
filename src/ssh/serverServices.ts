import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/** The settings the SSH side reads: connection limits, PROXY protocol sources, the legacy-algorithm switch. */
export type SshSettings = Pick<Config, 'limits' | 'proxyProtocol' | 'auth'>;

/** What the SSH listener and its connections need of the gateway's services (a part of SessionServices). */
export interface ServerServices {
  /** This node's name, in what a forwarded client is told when the leader cannot be reached. */
  node: string;
  config: SshSettings;
  log: Logger;
  metrics: Metrics;
}
