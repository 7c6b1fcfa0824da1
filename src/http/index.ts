import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CommandRegistry } from '../exec/registry.js';
import type { Metrics } from '../metrics.js';
import { createHttpApp, type HttpAppDeps } from './app.js';
import { HealthMonitor, type HealthSources } from './health.js';
import { listenHttp, type HttpListener } from './server.js';
import type { DrainableLeadership } from './status.js';

export interface HttpDeps {
  config: Config;
  node: string;
  log: Logger;
  leadership: DrainableLeadership;
  registry: CommandRegistry;
  metrics: Metrics;
  ssh: HealthSources['ssh'];
  audit: HealthSources['audit'];
  hostKeys: ReadonlyArray<{ type: string; fingerprint: string }>;
  /** SSH addresses ("host:port") for /status. */
  listen: () => string[];
  /** Shared with the gateway's health step-down (a new one is made when absent). */
  health?: HealthMonitor;
  leaderChecks?: HttpAppDeps['leaderChecks'];
  successorTraffic?: HttpAppDeps['successorTraffic'];
  handoverAnnounceMs?: number;
}

/** Starts the HTTP surface when http.enabled; logs "http listening" with its address. */
export async function startHttp(deps: HttpDeps): Promise<HttpListener | null> {
  if (!deps.config.http.enabled) return null;
  const health = deps.health ?? new HealthMonitor({ ssh: deps.ssh, audit: deps.audit });
  const app = createHttpApp({ ...deps, health, startedAt: Date.now() });
  let listener: HttpListener;
  try {
    listener = await listenHttp(app, deps.config.http.host, deps.config.http.port);
  } catch (err) {
    health.stop();
    throw err;
  }
  deps.log.info({ http: `${listener.host}:${listener.port}`, tokenConfigured: deps.config.http.token !== undefined }, 'http listening');
  return {
    ...listener,
    close: async () => {
      health.stop();
      await listener.close();
    },
  };
}

export type { HttpListener };
