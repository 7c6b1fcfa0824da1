import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/** What the SSH listener and its connections need of the gateway's services (a part of SessionServices). */
export interface ServerServices {
  node: string;
  config: Config;
  log: Logger;
  metrics: Metrics;
}
