import { hostname } from 'node:os';
import type { Config } from './config/schema.js';
import type { Cluster } from './config/cluster.js';
import type { Logger } from './log.js';
import { loadHostKeys, type HostKey } from './ssh/hostKeys.js';
import { PublicKeyAuthenticator } from './ssh/auth.js';
import { SshServer } from './ssh/server.js';
import { AlgorithmPosture } from './ssh/algorithmPosture.js';
import { AuthFailureLimiter, KeyedCounter } from './ssh/limits.js';
import { AuditLog } from './audit/auditLog.js';
import { recoverPreviousRun } from './audit/recovery.js';
import { createLeadership } from './leadership/factory.js';
import type { Leadership } from './leadership/types.js';
import { TrackFileWriter } from './leadership/keepalived/trackFile.js';
import { HealthStepDown } from './leadership/healthStepDown.js';
import { FORWARD_CONNECT_TIMEOUT_MS } from './leadership/handover/timings.js';
import { CommandRegistry } from './exec/registry.js';
import { SpawnTurns } from './exec/spawnTurns.js';
import { envAllowList } from './exec/environment.js';
import { RunAsPolicy } from './account/runAs.js';
import { createMetrics, type Metrics } from './metrics.js';
import { SystemdNotifier } from './systemd/notify.js';
import { startHttp } from './http/index.js';
import { HealthMonitor } from './http/health.js';
import { createRunOnce } from './runonce/create.js';
import { IdleReclaim } from './idleReclaim.js';
import { createScriptReplication } from './cluster/replication.js';
import { nodeRuntime } from './gateway/nodeRuntime.js';
import { LateSshConnections } from './gateway/sshConnections.js';
import { createDrainControl } from './gateway/drainControl.js';
import { ExecutionPipeline } from './command/pipeline.js';
import { processStarter } from './command/processStarter.js';
import { followLeadership } from './command/leadershipPolicy.js';
import { prepareProcess } from './gateway/processSetup.js';
import { reportLeadership } from './gateway/leadershipMetrics.js';
import { resolveServerToken } from './config/tokenFile.js';
import type { EtcdConnectionSettings } from './config/etcdConnection.js';

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

/** Builds every part from the config and starts listening. */
export async function startGateway(config: Config, cluster?: Cluster): Promise<Gateway> {
  // 1. The process: checks and start-up lines before anything is built.
  const node = config.node ?? hostname();
  const { log, ssh2Crypto } = prepareProcess(config, node);
  const runtime = nodeRuntime(config, node, cluster);

  // 2. Who may connect and what is on record.
  const hostKeys = loadHostKeys(config.hostKeys);
  const runAs = new RunAsPolicy(config.runAs);
  const envAllowed = envAllowList(config.env.allow, config.env.allowUnsafe);
  if (runAs.permitRoot) {
    log.warn(`runAs.permitRoot is true: commands may run as root (${runAs.describe()}); map usernames to unprivileged accounts for production`);
  }
  const metrics = createMetrics(node, ssh2Crypto);
  const { auth, limits } = config;
  const failures = new AuthFailureLimiter(limits.authFailures);
  const authenticator = new PublicKeyAuthenticator({
    authorizedKeysPath: config.authorizedKeys,
    allowSshRsaSha1: auth.allowSshRsaSha1,
    permitKeyEnvironment: auth.permitKeyEnvironment,
    runAs,
    failures,
    log,
    metrics,
  });
  const audit = new AuditLog(config.audit.path, { node, log });
  await audit.open();
  // Before listening: kill what a SIGKILLed predecessor left, end its open records as "lost".
  await recoverPreviousRun(audit, log);
  const registry = new CommandRegistry();

  // The cluster's token: every request to a peer carries it (vrrp's peer poll, dispatch-script copies).
  const clusterToken = cluster ? resolveServerToken(config.http) : undefined;

  // 3. Leadership: the drain controller reads the SSH server (built in 4) through a port bound there.
  const sshConnections = new LateSshConnections();
  const source = createLeadership({ node, cluster, log, peerToken: clusterToken });
  const { leadership, leaderChecks, successorTraffic } = createDrainControl(runtime, { source, registry, ssh: sshConnections, audit, log });
  const reflect = reportLeadership(leadership, metrics, log);
  // keepalived follows the leader through its track_file (100 leader, 0 standby, -254 stepping down).
  const track = runtime.trackFile ? new TrackFileWriter({ path: runtime.trackFile, node, log }) : null;
  track?.follow(leadership);
  await leadership.start();
  reflect(leadership.current());
  followLeadership(leadership, { registry, finishOnLoss: runtime.finishOnLeadershipLoss, log });

  // 4. Commands and the SSH server.
  const runOnce = createRunOnce(config, node, log, metrics);
  // Which legacy algorithms clients still negotiate, kept across restarts (docs/security.md).
  const posture = new AlgorithmPosture({ path: runtime.posturePath, legacyOffered: auth.allowSshRsaSha1, log });
  posture.start();
  // Rundeck's script uploads go to the other nodes too, so a failover between upload and exec does not fail the step.
  const scriptReplication = createScriptReplication({ config, cluster, node, token: clusterToken, log, metrics });
  const scriptReplica = scriptReplication ? { scriptReplica: scriptReplication.port } : {};
  const { exec } = config;
  const pipeline = new ExecutionPipeline({
    environment: { allowed: envAllowed, maxEnvVars: limits.maxEnvVars, maxEnvBytes: limits.maxEnvBytes },
    admission: {
      node,
      limits: { maxCommandBytes: limits.maxCommandBytes, maxCommands: limits.maxCommands, maxCommandsPerUser: limits.maxCommandsPerUser },
      leadership,
      gateWaitMs: runtime.gateWaitMs,
      runOnce: runOnce?.coordinator ?? null,
      audit,
      slots: new KeyedCounter(limits.maxCommands, limits.maxCommandsPerUser),
      spawnTurns: new SpawnTurns(),
      ...scriptReplica,
    },
    run: {
      plan: { node, shell: exec.shell, sftpServer: exec.sftpServer, path: exec.path },
      killGraceMs: exec.killGraceSeconds * 1000,
      closeGraceMs: exec.closeGraceMs,
      starter: processStarter,
      registry,
      metrics,
      ...scriptReplica,
    },
    record: { log, metrics, audit },
    log,
  });
  const ssh = new SshServer({
    hostKeys,
    authenticator,
    posture,
    peerProxies: runtime.peerProxies,
    forwardTo: runtime.forwardTo(leadership),
    forwardConnectTimeoutMs: FORWARD_CONNECT_TIMEOUT_MS,
    services: { node, config, log, metrics, pipeline },
  });
  sshConnections.bind(ssh);
  const address = await ssh.listen(config.listen.host, config.listen.port);
  for (const extra of config.alsoListen) await ssh.listen(extra.host, extra.port);
  const listen = () => [address, ...config.alsoListen].map((l) => `${l.host}:${l.port}`);

  // 5. HTTP, health and housekeeping.
  const health = new HealthMonitor({ ssh, audit });
  const handover = leaderChecks ? { leaderChecks, successorTraffic, handoverAnnounceMs: runtime.handoverAnnounceMs } : {};
  const etcd = etcdInUse(config, cluster);
  const http = await startHttp({ config, node, log, leadership, registry, metrics, ssh, audit, hostKeys, listen, health, posture, scriptReceiver: scriptReplication?.receiver, etcd, ...handover });
  // In a cluster an unhealthy leader hands over (a single node has nobody to hand over to).
  const stepDown = runtime.stepsDownWhenUnhealthy ? new HealthStepDown({ check: () => health.check(), leadership, track, terminate: (why) => registry.terminateAll(why), log }) : null;
  stepDown?.start();
  // Memory back after a load (and after start-up): full collections once the event loop is quiet.
  const reclaim = new IdleReclaim({ log });
  reclaim.start();
  log.info(
    {
      listen: `${address.host}:${address.port}`,
      alsoListen: config.alsoListen.map((l) => `${l.host}:${l.port}`),
      runAs: runAs.describe(),
      leadership: leadership.kind,
      hostKeys: hostKeys.map((k) => `${k.type} ${k.fingerprint}`),
    },
    'execgate listening',
  );
  // systemd (Type=notify): READY=1 now, then WATCHDOG=1 from the event loop; no-op without NOTIFY_SOCKET.
  const notifier = new SystemdNotifier({ onError: (message) => log.warn({ message }, 'sd_notify failed') });
  if (notifier.enabled) {
    log.info({ watchdogMs: notifier.watchdogMs }, 'notifying systemd');
    void notifier.ready('listening');
  }

  // Stopping, mostly in reverse; HTTP (health, status) stays up until the commands have ended.
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

/** How this node reaches etcd, for /status: leadership's connection, else run-once's (undefined: no etcd). */
function etcdInUse(config: Config, cluster: Cluster | undefined): EtcdConnectionSettings | undefined {
  if (cluster?.leadership.source === 'etcd' && cluster.leadership.etcd) return cluster.leadership.etcd;
  return config.runOnce.enabled ? config.runOnce.etcd : undefined;
}
