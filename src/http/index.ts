import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CommandRegistry } from '../exec/registry.js';
import type { Metrics } from '../metrics.js';
import { createHttpApp, type HttpAppDeps } from './app.js';
import { HealthMonitor, type HealthSources } from './health.js';
import { listenHttp, type HttpListener } from './server.js';
import type { DrainableLeadership, StatusSources } from './status.js';
import { defaultAccessPolicy } from './access.js';
import { resolveServerToken } from './token.js';

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
  /** Legacy algorithm use for /status and the page. */
  posture?: StatusSources['posture'];
  /** Shared with the gateway's health step-down (a new one is made when absent). */
  health?: HealthMonitor;
  leaderChecks?: HttpAppDeps['leaderChecks'];
  successorTraffic?: HttpAppDeps['successorTraffic'];
  handoverAnnounceMs?: number;
  scriptReceiver?: HttpAppDeps['scriptReceiver'];
  etcd?: StatusSources['etcd'];
}

/** Starts the HTTP surface when http.enabled; logs "http listening" with its address. */
export async function startHttp(deps: HttpDeps): Promise<HttpListener | null> {
  if (!deps.config.http.enabled) return null;
  // Before anything listens: a token file open to others is refused with its chmod.
  const token = resolveServerToken(deps.config.http);
  const health = deps.health ?? new HealthMonitor({ ssh: deps.ssh, audit: deps.audit });
  const app = createHttpApp({ ...deps, health, startedAt: Date.now(), access: defaultAccessPolicy(token) });
  let listener: HttpListener;
  try {
    listener = await listenHttp(app, deps.config.http.host, deps.config.http.port);
  } catch (err) {
    health.stop();
    throw err;
  }
  deps.log.info(
    { http: `${listener.host}:${listener.port}`, tokenConfigured: token !== undefined, ...(deps.config.http.tokenFile ? { tokenFile: deps.config.http.tokenFile } : {}) },
    'http listening',
  );
  if (token === undefined) {
    deps.log.warn(
      { http: `${listener.host}:${listener.port}` },
      'no http.tokenFile or http.token: admin calls and command lines are open to root and the account execgate runs as on loopback only; set http.tokenFile to use a token',
    );
  }
  return {
    ...listener,
    close: async () => {
      health.stop();
      await listener.close();
    },
  };
}

export type { HttpListener };
