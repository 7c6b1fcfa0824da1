import type { Config } from '../config/schema.js';
import type { CommandRegistry } from '../exec/registry.js';
import type { LeadershipState, Role } from '../leadership/types.js';
import type { DrainStatus } from '../leadership/handover/drain.js';
import type { HealthReport } from './health.js';
import { VERSION } from '../version.js';
import { isoTime } from '../time.js';
import type { PostureReport } from '../ssh/postureReport.js';
import type { EtcdConnectionSettings } from '../config/etcdConnection.js';

/** The leadership source as the HTTP surface sees it: the drain overlay. */
export interface DrainableLeadership {
  readonly kind: string;
  current(): LeadershipState;
  status(): DrainStatus;
  drain(): DrainStatus;
  undrain(): Promise<DrainStatus>;
}

export interface StatusSources {
  node: string;
  config: Pick<Config, 'limits' | 'exec' | 'http'>;
  leadership: DrainableLeadership;
  registry: Pick<CommandRegistry, 'listRunning' | 'listRecent'>;
  hostKeys: ReadonlyArray<{ type: string; fingerprint: string }>;
  /** SSH addresses this node listens on ("host:port"). */
  listen: () => string[];
  startedAt: number;
  /** Legacy algorithms negotiated in the last 24 h (src/ssh/algorithmPosture.ts). */
  posture?: { report(): PostureReport };
  /** How this node reaches etcd (leadership.etcd, else runOnce.etcd); absent without etcd. */
  etcd?: EtcdConnectionSettings;
}

/** How the node reaches etcd, for /status and the page: what docs/etcd-security.md asks for is tls and auth. */
export interface EtcdView {
  /** https endpoints with mutual TLS. */
  tls: boolean;
  /** etcd's own authentication (an auth block: a user limited to the cluster's keys). */
  auth: boolean;
  /** Plain-HTTP endpoints accepted with insecure: true: anyone who reaches etcd can take or break the lead. */
  insecure: boolean;
}

export function etcdView(s: EtcdConnectionSettings): EtcdView {
  const https = s.endpoints.every((e) => e.startsWith('https:'));
  return { tls: https, auth: s.auth !== undefined, insecure: !https };
}

const tokenText = (t: bigint | null) => (t === null ? null : t.toString());

export interface RunningView {
  id: string;
  user: string;
  /** null when the caller may not see command lines (see credentialOf: the bearer token, or the owner when no token is set). */
  command: string | null;
  client: string;
  started: string;
  runningSeconds: number;
  pid: number | null;
  token: string | null;
}

export interface FinishedView extends Omit<RunningView, 'runningSeconds'> {
  ended: string;
  durationSeconds: number;
  result: string;
  exitStatus: number;
}

export interface StatusView {
  version: string;
  node: string;
  leadership: string;
  role: Role;
  /** Fencing token as a decimal string (it may exceed 2^53). */
  token: string | null;
  leader: string | null;
  since: string;
  reason: string | null;
  drain: { phase: DrainStatus['phase']; since: string | null; deadline: string | null; timeoutSeconds: number; error: string | null };
  health: { ok: boolean; reason: string | null };
  listen: string[];
  uptimeSeconds: number;
  commandLines: 'shown' | 'hidden';
  running: RunningView[];
  recent: FinishedView[];
  hostKeys: Array<{ type: string; fingerprint: string }>;
  limits: Config['limits'] & { killGraceSeconds: number; closeGraceMs: number };
  /** Which legacy SSH algorithms clients negotiated in the last 24 h; null when not recorded. */
  algorithms: PostureReport | null;
  /** How this node reaches etcd; null when it uses none. */
  etcd: EtcdView | null;
}

/** /status and the page: state, not secrets (command lines only when allowed). */
export function statusView(src: StatusSources, health: HealthReport, showCommands: boolean, now = Date.now()): StatusView {
  const state = src.leadership.current();
  const drain = src.leadership.status();
  const cmd = (c: string) => (showCommands ? c : null);
  return {
    version: VERSION,
    node: src.node,
    leadership: src.leadership.kind,
    role: state.role,
    token: tokenText(state.token),
    leader: state.leader ?? null,
    since: isoTime(state.since),
    reason: state.reason ?? null,
    drain: {
      phase: drain.phase,
      since: drain.since === null ? null : isoTime(drain.since),
      deadline: drain.deadline === null ? null : isoTime(drain.deadline),
      timeoutSeconds: drain.timeoutSeconds,
      error: drain.error,
    },
    health: { ok: health.ok, reason: health.reason },
    listen: src.listen(),
    uptimeSeconds: Math.round((now - src.startedAt) / 1000),
    commandLines: showCommands ? 'shown' : 'hidden',
    running: src.registry.listRunning().map((c) => ({
      id: c.execId,
      user: c.user,
      command: cmd(c.command),
      client: c.client,
      started: isoTime(c.startedAt),
      runningSeconds: Math.round((now - c.startedAt) / 100) / 10,
      pid: c.pid,
      token: c.token,
    })),
    recent: src.registry.listRecent().map((c) => ({
      id: c.execId,
      user: c.user,
      command: cmd(c.command),
      client: c.client,
      started: isoTime(c.startedAt),
      ended: isoTime(c.endedAt),
      durationSeconds: Math.round((c.endedAt - c.startedAt) / 100) / 10,
      pid: c.pid,
      token: c.token,
      result: c.result,
      exitStatus: c.exitStatus,
    })),
    hostKeys: src.hostKeys.map((k) => ({ type: k.type, fingerprint: k.fingerprint })),
    limits: { ...src.config.limits, killGraceSeconds: src.config.exec.killGraceSeconds, closeGraceMs: src.config.exec.closeGraceMs },
    algorithms: src.posture?.report() ?? null,
    etcd: src.etcd ? etcdView(src.etcd) : null,
  };
}
