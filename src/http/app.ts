import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { HealthMonitor } from './health.js';
import { statusView, type StatusSources } from './status.js';
import { renderPage } from './page.js';
import { credentialOf, defaultAccessPolicy, isCrossSite, maySeeCommands, type AccessPolicy, type Credential } from './access.js';
import { resolveServerToken } from './token.js';
import { leaderCheckStatus } from './leaderCheck.js';
import type { LeadershipState } from '../leadership/types.js';
import { peerScriptRouter } from '../cluster/peerEndpoint.js';
import { PEER_PREFIX, peerTokenGuard } from '../cluster/peerAuth.js';
import type { ScriptReceiver } from '../cluster/scriptReceiver.js';
import { isoTime } from '../time.js';

export interface HttpAppDeps extends StatusSources {
  health: Pick<HealthMonitor, 'check'>;
  metrics: { registry: Registry };
  log?: Logger;
  /** Told every /leader answer, so a handover sees when load balancers marked this node down. */
  leaderChecks?: { record(remoteAddress: string | undefined, status: number): void };
  /** Told every /leader answer too, so the next in line sees when load balancers marked it UP. */
  successorTraffic?: { record(remoteAddress: string | undefined, status: number, state: LeadershipState): void };
  /** How long a leader handing over still answers 200 on /leader (see leaderCheckStatus). */
  handoverAnnounceMs?: number;
  /** Who may drain and read command lines; default: the token of http.token/http.tokenFile. */
  access?: AccessPolicy;
  /** Cluster nodes: takes peers' copies of Rundeck dispatch scripts (/peer/dispatch-script, token only). */
  scriptReceiver?: ScriptReceiver;
}

/**
 * prom-client's default metrics include three gauges named *_total, which
 * `promtool check metrics` rejects ("non-counter metrics should not have _total
 * suffix"). They are sums of the per-type gauges of the same name without _total
 * (sum(execgate_nodejs_active_handles) gives the same figure), so they are left out.
 */
const LINT_FAILING = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function withoutLintFailures(text: string): string {
  const names = new Set(LINT_FAILING.flatMap((n) => [n, `execgate_${n}`]));
  return text
    .split('\n')
    .filter((line) => {
      const name = line.startsWith('# ') ? line.split(' ')[2] : line.split(/[{ ]/)[0];
      return name === undefined || !names.has(name);
    })
    .join('\n');
}

/**
 * The HTTP surface: health for keepalived, readiness and leader for HAProxy,
 * metrics for Prometheus, status for people and scripts, drain for operators.
 * It only reads state, except /admin/* which asks the drain controller.
 */
export function createHttpApp(deps: HttpAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  });
  const access = deps.access ?? defaultAccessPolicy(resolveServerToken(deps.config.http));
  const token = access.token;
  /** A wrong token is an error (not a quiet "hidden"), so a caller learns it has the wrong one. */
  const wrongToken = (res: Response) =>
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer')
      .json({
        error: token
          ? 'wrong bearer token: send the token of this node\'s http.tokenFile (or http.token) as "Authorization: Bearer <token>"'
          : 'this node has no http.token or http.tokenFile, so it accepts no bearer token: set http.tokenFile (a mode 0600 file holding the token) in its config and restart it',
      });

  app.get('/healthz', async (_req, res) => {
    const h = await deps.health.check();
    res.status(h.ok ? 200 : 503).json({ status: h.ok ? 'ok' : 'unhealthy', node: deps.node, reason: h.reason, checks: h.checks });
  });

  app.get('/readyz', async (_req, res) => {
    const h = await deps.health.check();
    const state = deps.leadership.current();
    const reason = !h.ok ? `unhealthy: ${h.reason}` : state.role === 'leader' ? null : state.role;
    res.status(reason === null ? 200 : 503).json({
      status: reason === null ? 'ready' : 'not ready',
      node: deps.node,
      role: state.role,
      reason,
      ...(state.reason && reason !== null ? { detail: state.reason } : {}),
    });
  });

  app.get('/leader', async (req, res) => {
    const state = deps.leadership.current();
    const token = state.token === null ? null : state.token.toString();
    // An unhealthy leader sends HAProxy elsewhere at once; it hands over shortly after.
    const h = await deps.health.check();
    const status = leaderCheckStatus(state, h.ok, deps.handoverAnnounceMs ?? 0);
    deps.leaderChecks?.record(req.socket.remoteAddress, status);
    deps.successorTraffic?.record(req.socket.remoteAddress, status, state);
    if (status === 200 && state.role === 'leader') {
      res.status(200).json({ node: deps.node, token, since: isoTime(state.since) });
      return;
    }
    res.status(status).json({
      node: deps.node,
      role: state.role,
      leader: state.leader ?? null,
      token,
      since: isoTime(state.since),
      reason: !h.ok ? `unhealthy: ${h.reason}` : (state.reason ?? null),
    });
  });

  // Command lines can carry secrets: only the token holder sees them (see credentialOf).
  app.get('/status', async (req, res) => {
    const credential = await credentialOf(req, access);
    if (credential === 'bad-token') return void wrongToken(res);
    const h = await deps.health.check();
    res.json(statusView(deps, h, maySeeCommands(credential)));
  });

  app.get('/', async (req, res) => {
    const credential = await credentialOf(req, access);
    if (credential === 'bad-token') return void wrongToken(res);
    const h = await deps.health.check();
    res.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
    res.type('html').send(renderPage(statusView(deps, h, maySeeCommands(credential))));
  });

  app.get('/metrics', async (_req, res) => {
    const text = await deps.metrics.registry.metrics();
    res.type(deps.metrics.registry.contentType).send(withoutLintFailures(text));
  });

  const admin = (action: 'drain' | 'undrain') => async (req: Request, res: Response) => {
    const credential: Credential = await credentialOf(req, access);
    if (credential === 'bad-token') return void wrongToken(res);
    if (credential === 'none' && token !== undefined) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer')
        .json({
          error: `${action} needs "Authorization: Bearer <token>" with the token of this node's http.tokenFile (or http.token), from loopback too; on the node, "execgate ${action}" sends it (it reads the token file; or pass --token-file)`,
        });
      return;
    }
    if (credential === 'none') {
      res.status(403).json({
        error: `${action} without a token is allowed only from loopback, to root or the account execgate runs as; to allow other callers set http.tokenFile (a mode 0600 file holding the token) and send "Authorization: Bearer <token>"`,
      });
      return;
    }
    if (isCrossSite(req)) {
      res.status(403).json({ error: 'cross-site requests are refused' });
      return;
    }
    const before = deps.leadership.status().phase;
    const drain = action === 'drain' ? deps.leadership.drain() : await deps.leadership.undrain();
    deps.log?.info({ action, client: req.socket.remoteAddress, credential, before, after: drain.phase }, `admin ${action}`);
    const view = statusView(deps, await deps.health.check(), true);
    res.json({ action, changed: before !== drain.phase, node: deps.node, role: view.role, leader: view.leader, token: view.token, drain: view.drain, running: view.running });
  };
  app.post('/admin/drain', admin('drain'));
  app.post('/admin/undrain', admin('undrain'));

  // Peer-only endpoints: the cluster's token or a logged 401, also where nothing is served there.
  app.use(PEER_PREFIX, peerTokenGuard({ token, log: deps.log }));
  if (deps.scriptReceiver) app.use(peerScriptRouter({ receiver: deps.scriptReceiver, log: deps.log }));

  app.use((req, res) => {
    res.status(404).json({ error: `no such endpoint: ${req.method} ${req.path}` });
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    deps.log?.error({ err: err.message, stack: err.stack }, 'http handler failed');
    if (!res.headersSent) res.status(500).json({ error: err.message });
  });
  return app;
}
