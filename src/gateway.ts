import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './log.js';
import { loadHostKeys, type HostKey } from './ssh/hostKeys.js';
import { PublicKeyAuthenticator } from './ssh/auth.js';
import { SshServer } from './ssh/server.js';
import { AlgorithmPosture, POSTURE_FILE } from './ssh/algorithmPosture.js';
import { assertSsh2Patched } from './ssh/ssh2Patch.js';
import { describeCryptoBackend, sshCryptoBackend } from './ssh/cryptoBackend.js';
import { AuditLog } from './audit/auditLog.js';
import { recoverPreviousRun } from './audit/recovery.js';
import { createLeadership } from './leadership/factory.js';
import type { Cluster } from './config/cluster.js';
import type { Leadership } from './leadership/types.js';
import { CommandRegistry } from './exec/registry.js';
import { SpawnTurns } from './exec/spawnTurns.js';
import { envAllowList } from './exec/environment.js';
import { RunAsPolicy } from './exec/runAs.js';
import { closeInheritedFds } from './exec/inheritedFds.js';
import { cgroupSupport } from './exec/cgroup.js';
import { setpriv } from './exec/launch.js';
import { AuthFailureLimiter, KeyedCounter } from './ssh/limits.js';
import { createMetrics, type Metrics } from './metrics.js';
import { SystemdNotifier } from './systemd/notify.js';
import { DrainController } from './leadership/handover/drain.js';
import { TrackFileWriter } from './leadership/keepalived/trackFile.js';
import { AllProbes, LoadBalancerProbe, SuccessorTraffic, VipProbe } from './leadership/handover/probes.js';
import { hostProbes } from './leadership/keepalived/probes.js';
import { startHttp } from './http/index.js';
import { HealthMonitor } from './http/health.js';
import { HealthStepDown } from './leadership/healthStepDown.js';
import { createRunOnce } from './runonce/create.js';
import type { LeadershipState } from './leadership/types.js';
import { IdleReclaim } from './idleReclaim.js';
import { FORWARD_CONNECT_TIMEOUT_MS, LOAD_BALANCER_SETTLE_MS } from './leadership/handover/timings.js';
import type { ForwardTo } from './ssh/server.js';
import { createScriptReplication } from './cluster/replication.js';
import { ExecutionPipeline } from './command/pipeline.js';
import { processStarter } from './command/processStarter.js';

export interface Gateway {
  node: string;
  log: Logger;
  hostKeys: HostKey[];
  leadership: Leadership;
  registry: CommandRegistry;
  metrics: Metrics;
  ssh: SshServer;
  address: { host: string; port: number };
  /** The HTTP surface's address, or null when http.enabled is false. */
  httpAddress: { host: string; port: number } | null;
  stop(reason: string): Promise<void>;
  /** Reopens the audit log (SIGHUP, after logrotate). */
  reopenAudit(): Promise<void>;
}

/**
 * During a fast handover (and after it, until undrain) new SSH connections go to the new
 * leader, or before it leads to the node next in line. Connections from a peer were
 * forwarded already and stay here, so a connection never loops between nodes.
 */
function forwardDuringDrain(cluster: Cluster, drain: DrainController, peerAddresses: ReadonlySet<string>): ForwardTo {
  return (socket) => {
    const name = drain.forwardTarget();
    if (!name) return null;
    if (peerAddresses.has((socket.remoteAddress ?? '').replace(/^::ffff:/, ''))) return null;
    const target = cluster.nodes.find((n) => n.name === name);
    return target ? { host: target.address, port: target.sshPort, name } : null;
  };
}

/** Builds every part from the config and starts listening. */
export async function startGateway(config: Config, cluster?: Cluster): Promise<Gateway> {
  assertSsh2Patched();
  const node = config.node ?? hostname();
  const log = createLogger(config.log.level, node);
  const inheritedFds = closeInheritedFds();
  if (inheritedFds.length > 0) log.info({ fds: inheritedFds }, 'closed file descriptors inherited from the parent, so no command inherits them');
  cgroupSupport(); // says at start whether leftovers of commands can be found and killed
  // Which crypto ssh2 uses: its native binding, or (silently, in ssh2) its slower JavaScript fallback.
  const crypto = sshCryptoBackend();
  if (crypto.backend === 'native') log.info({ ssh2Crypto: crypto.backend, binding: crypto.binding }, describeCryptoBackend(crypto));
  else log.warn({ ssh2Crypto: crypto.backend, binding: crypto.binding, error: crypto.error, fix: crypto.fix }, describeCryptoBackend(crypto));
  if (process.getuid?.() === 0) setpriv(); // a root gateway switches users; fail now if it cannot
  const hostKeys = loadHostKeys(config.hostKeys);
  const runAs = new RunAsPolicy(config.runAs);
  const envAllowed = envAllowList(config.env.allow, config.env.allowUnsafe);
  if (runAs.permitRoot) {
    log.warn(`runAs.permitRoot is true: commands may run as root (${runAs.describe()}); map usernames to unprivileged accounts for production`);
  }
  const metrics = createMetrics(node);
  const authenticator = new PublicKeyAuthenticator({
    authorizedKeysPath: config.authorizedKeys,
    allowSshRsaSha1: config.auth.allowSshRsaSha1,
    permitKeyEnvironment: config.auth.permitKeyEnvironment,
    runAs,
    failures: new AuthFailureLimiter(config.limits.authFailures),
    log,
    metrics,
  });
  const audit = new AuditLog(config.audit.path, { node, log });
  await audit.open();
  // Before listening: kill what a SIGKILLed predecessor left, end its open records as "lost".
  await recoverPreviousRun(audit, log);
  const registry = new CommandRegistry();
  // A handover is over when the VIP has left (settled for one advert interval) and every
  // load balancer has stopped sending new connections here (and those it sent before
  // have reached the gate).
  const source = cluster?.leadership.source;
  const leaderChecks = cluster?.loadBalancers.length
    ? new LoadBalancerProbe(cluster.loadBalancers, LOAD_BALANCER_SETTLE_MS, Date.now, (instant: number): boolean => ssh.undecidedBefore(instant))
    : null;
  const vipLocal = cluster ? hostProbes(cluster).vipLocal : undefined;
  const traffic = cluster && vipLocal ? new AllProbes([new VipProbe(vipLocal, cluster.vrrp.advertInterval * 1000), ...(leaderChecks ? [leaderChecks] : [])]) : undefined;
  const leadership: DrainController = new DrainController(createLeadership({ node, cluster, log }), {
    running: () => registry.size,
    terminate: (why) => registry.terminateAll(why),
    timeoutSeconds: config.drainTimeoutSeconds ?? cluster?.leadership.drainTimeoutSeconds ?? 600,
    handoverMs: cluster && cluster.leadership.source !== 'static' ? cluster.leadership.handoverMs : 0,
    traffic,
    pinned: cluster ? () => registry.countVia(cluster.vip.address) : undefined,
    self: node,
    // Fast handover (etcd): admission moves at once, running commands finish here, new connections are forwarded.
    mode: source === 'etcd' ? (cluster?.leadership.handover ?? 'fast') : 'strict',
    vipConnections: cluster ? () => ssh.openVia(cluster.vip.address) : undefined,
    forwarded: () => ssh.forwardedCount,
    undecidedBefore: (instant) => ssh.undecidedBefore(instant),
    // Only a VIP with a listener of its own can be held without holding the node's address too.
    holdVip: cluster?.vip.bind === 'nonlocal' ? (hold) => ssh.holdNewConnections(cluster.vip.address, hold) : undefined,
    vipLocal,
    vipHoldMs: (cluster?.leadership.vipHoldSeconds ?? 0) * 1000,
    cutConnections: (reason) => {
      const open = ssh.describeConnections(); // forwarded ones included
      log.warn({ connections: open }, `drain: cutting ${open.length} open connection(s) so the VIP can move (${reason})`);
      void audit.cut(reason, open);
      ssh.destroyConnections();
      return open.length;
    },
    log,
  });
  // The next in line tells the leader handing over when every load balancer sends it traffic.
  const successorTraffic =
    leaderChecks && cluster
      ? new SuccessorTraffic(cluster.loadBalancers, cluster.haproxy.rise, (id) => {
          log.info({ handoverId: id }, 'handover: every load balancer sends new connections here; telling the leader');
          void leadership.announceReady(id);
        })
      : undefined;
  const reflect = (state: LeadershipState) => {
    metrics.leader.set(state.role === 'leader' ? 1 : 0);
    metrics.fencingToken.set(state.role === 'leader' && state.token !== null ? Number(state.token) : 0);
  };
  leadership.onChange((state) => {
    metrics.leadershipTransitions.inc({ to: state.role });
    reflect(state);
    log.info({ role: state.role, token: state.token?.toString() ?? null, leader: state.leader ?? null }, 'leadership changed');
  });
  // keepalived follows the leader through its track_file (100 leader, 0 standby, -254 stepping down).
  const track = cluster && (source === 'vrrp' || source === 'etcd') ? new TrackFileWriter({ path: cluster.trackFile, node, log }) : null;
  track?.follow(leadership);
  await leadership.start();
  reflect(leadership.current());
  // Fencing: a node that lost (or may have lost) its lease SIGKILLs every running command at once.
  leadership.onChange((state) => {
    if (state.role === 'fenced') void registry.terminateAll('fenced: lease lost', true);
  });
  // Lost the lead without a fence (vrrp/static; etcd always): terminate with grace unless onLeadershipLoss is "finish".
  let leading = ['leader', 'draining'].includes(leadership.current().role);
  leadership.onChange((state) => {
    const wasLeading = leading;
    leading = state.role === 'leader' || state.role === 'draining';
    const finish = source !== 'etcd' && cluster?.leadership.onLeadershipLoss === 'finish';
    if (wasLeading && state.role === 'standby' && !finish && registry.size > 0) {
      log.warn({ running: registry.size }, 'leadership lost: terminating running commands');
      void registry.terminateAll('leadership lost');
    }
  });
  const runOnce = createRunOnce(config, node, log, metrics);
  // Which legacy algorithms clients still negotiate, kept across restarts (docs/security.md).
  const posture = new AlgorithmPosture({
    // Per node in a cluster: nodes of a lab on one host share the cluster's stateDir.
    path: join(config.stateDir ?? cluster?.stateDir ?? dirname(config.audit.path), cluster ? POSTURE_FILE.replace('.json', `-${node}.json`) : POSTURE_FILE),
    legacyOffered: config.auth.allowSshRsaSha1,
    log,
  });
  posture.start();
  // Rundeck's script uploads go to the other nodes too, so a failover between upload and exec does not fail the step.
  const scriptReplication = createScriptReplication({ config, cluster, node, log, metrics });
  const pipeline = new ExecutionPipeline({
    environment: { allowed: envAllowed, maxEnvVars: config.limits.maxEnvVars, maxEnvBytes: config.limits.maxEnvBytes },
    admission: {
      node,
      limits: config.limits,
      leadership,
      gateWaitMs: cluster?.leadership.gateWaitMs ?? 0,
      runOnce: runOnce?.coordinator ?? null,
      audit,
      slots: new KeyedCounter(config.limits.maxCommands, config.limits.maxCommandsPerUser),
      spawnTurns: new SpawnTurns(),
      ...(scriptReplication ? { scriptReplica: scriptReplication.port } : {}),
    },
    run: {
      plan: { node, shell: config.exec.shell, sftpServer: config.exec.sftpServer, path: config.exec.path },
      killGraceMs: config.exec.killGraceSeconds * 1000,
      closeGraceMs: config.exec.closeGraceMs,
      starter: processStarter,
      registry,
      metrics,
      ...(scriptReplication ? { scriptReplica: scriptReplication.port } : {}),
    },
    record: { log, metrics, audit },
    log,
  });
  const peerAddresses = new Set(cluster?.nodes.map((n) => n.address) ?? []);
  const ssh: SshServer = new SshServer({
    hostKeys,
    authenticator,
    posture,
    // Peers forward new clients during a drain (PROXY v2 header first) and also connect directly.
    peerProxies: cluster ? [...peerAddresses, cluster.vip.address] : [],
    forwardTo: cluster ? forwardDuringDrain(cluster, leadership, peerAddresses) : undefined,
    forwardConnectTimeoutMs: FORWARD_CONNECT_TIMEOUT_MS,
    services: { node, config, log, metrics, pipeline },
  });
  const address = await ssh.listen(config.listen.host, config.listen.port);
  for (const extra of config.alsoListen) await ssh.listen(extra.host, extra.port);
  const listen = () => [address, ...config.alsoListen].map((l) => `${l.host}:${l.port}`);
  const health = new HealthMonitor({ ssh, audit });
  const http = await startHttp({ config, node, log, leadership, registry, metrics, ssh, audit, hostKeys, listen, health, posture, scriptReceiver: scriptReplication?.receiver, ...(leaderChecks && cluster ? { leaderChecks, successorTraffic, handoverAnnounceMs: cluster.haproxy.rise * cluster.haproxy.interMs + 100 } : {}) });
  // In a cluster an unhealthy leader hands over (a single node has nobody to hand over to).
  const stepDown =
    source === 'etcd' || source === 'vrrp'
      ? new HealthStepDown({ check: () => health.check(), leadership, track, terminate: (why) => registry.terminateAll(why), log })
      : null;
  stepDown?.start();
  // Memory back after a load (and after start-up): full collections once the event loop is quiet.
  const reclaim = new IdleReclaim({ log });
  reclaim.start();
  log.info(
    { listen: `${address.host}:${address.port}`, alsoListen: config.alsoListen.map((l) => `${l.host}:${l.port}`), runAs: runAs.describe(), leadership: leadership.kind, hostKeys: hostKeys.map((k) => `${k.type} ${k.fingerprint}`) },
    'execgate listening',
  );
  // systemd (Type=notify): READY=1 now, then WATCHDOG=1 from the event loop; no-op without NOTIFY_SOCKET.
  const notifier = new SystemdNotifier({ onError: (message) => log.warn({ message }, 'sd_notify failed') });
  if (notifier.enabled) {
    log.info({ watchdogMs: notifier.watchdogMs }, 'notifying systemd');
    void notifier.ready('listening');
  }

  let stopping: Promise<void> | null = null;
  const stop = (reason: string) =>
    (stopping ??= (async () => {
      track?.stop(); // -254 first: keepalived hands the VIP over while we wind down
      stepDown?.stop();
      reclaim.stop();
      scriptReplication?.stop();
      log.info({ reason, running: registry.size }, 'stopping');
      void notifier.stopping(reason);
      await ssh.stopListening();
      await registry.terminateAll(`gateway stopping: ${reason}`);
      ssh.destroyConnections();
      await http?.close();
      health.stop();
      await leadership.stop();
      await runOnce?.close();
      await posture.close();
      await audit.close();
      log.info('stopped');
      notifier.close();
    })());

  const httpAddress = http ? { host: http.host, port: http.port } : null;
  const reopenAudit = () => audit.reopen();
  return { node, log, hostKeys, leadership, registry, metrics, ssh, address, httpAddress, stop, reopenAudit };
}
