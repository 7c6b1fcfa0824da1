import { posix } from 'node:path';
import { z } from 'zod';
import { configSchema } from './schema.js';
import { etcdConnectionShape } from './etcdConnection.js';

/**
 * One cluster file describes every node; `execgate serve --cluster FILE --node NAME`
 * derives that node's gateway config from it, and `execgate render` derives the
 * keepalived, haproxy and systemd files from the same data.
 */
/** Where a cluster's gateways find each SSH user's keys unless gateway.authorizedKeys says otherwise. */
export const DEFAULT_CLUSTER_AUTHORIZED_KEYS = '/etc/execgate/authorized_keys/%u';

const port = z.int().min(1).max(65535);
const name = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only');

export const clusterNodeSchema = z.strictObject({
  name,
  address: z.ipv4(),
  /** VRRP priority, 1-254; distinct per node. */
  priority: z.int().min(1).max(254),
  /** Where this node's execgate listens for SSH (on its own address). */
  sshPort: port.default(2222),
  /** Health/leader/status/metrics HTTP listener on the node's own address. */
  httpPort: port.default(9422),
});

export const etcdSettingsSchema = z.strictObject({
  ...etcdConnectionShape,
  /** Requested lease TTL; etcd may grant more (read the granted TTL). */
  ttlSeconds: z.number().min(1).default(5),
  /** The leader fences itself this long before its lease could expire. */
  marginSeconds: z.number().positive().default(1),
  prefix: z.string().startsWith('/').default('/execgate'),
});

/**
 * Rundeck dispatch scripts (`scp -t <dir>/<n>-<execid>-<node>-dispatch-script.tmp.<ext>`)
 * are copied to every other node before the upload is acknowledged, so chmod, exec and
 * rm work on whichever node leads next (src/cluster/scriptReplica.ts).
 */
export const scriptReplicationSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Larger uploads stay on the node that received them (and are logged). */
  maxBytes: z
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /** How long an upload (or rm) waits for each peer before going on without it. */
  timeoutMs: z.int().min(50).max(60_000).default(2000),
  /** Directories a copy may be written to (Rundeck's file-copy-destination-dir; /tmp by default). */
  directories: z
    .array(
      z
        .string()
        .startsWith('/')
        .refine((d) => d === '/' || (posix.normalize(d) === d && !d.endsWith('/')), 'a normalised absolute path (no "..", "//" or trailing "/")'),
    )
    .min(1)
    .default(['/tmp']),
});

export const leadershipSettingsSchema = z.strictObject({
  source: z.enum(['static', 'vrrp', 'etcd']).default('etcd'),
  etcd: etcdSettingsSchema.optional(),
  /** vrrp and static only; etcd mode always terminates. */
  onLeadershipLoss: z.enum(['terminate', 'finish']).default('terminate'),
  drainTimeoutSeconds: z.number().positive().default(600),
  /**
   * After a drain, keep leading at most this long while the VIP/HAProxy move new traffic
   * away; it ends earlier once the VIP has left and every load balancer was refused.
   */
  handoverMs: z.int().nonnegative().default(1000),
  /** A standby waits this long for the lead before refusing (covers handovers and failovers). */
  gateWaitMs: z.int().nonnegative().default(3000),
  /**
   * etcd mode, planned handovers (drain): "fast" hands admission to the next node at once
   * while the old node's running commands finish under its own lease (an older token can
   * still be running when a newer one starts); "strict" keeps the order of tokens: the next
   * node leads only once every command of the old one has ended.
   */
  handover: z.enum(['fast', 'strict']).default('fast'),
  /**
   * VIP drains: while connections that came in on the VIP keep it here, hold new ones in
   * the kernel (their SYNs wait in the client's TCP and reach the node that holds the VIP
   * next) for at most this long; 0 never holds (new ones are forwarded, or refused under
   * strict). Clients give up on a SYN after about 127 s (Linux tcp_syn_retries 6).
   */
  vipHoldSeconds: z.number().nonnegative().max(120).default(60),
  scriptReplication: scriptReplicationSchema.prefault({}),
});

export const vrrpSettingsSchema = z.strictObject({
  virtualRouterId: z.int().default(51),
  version: z.union([z.literal(2), z.literal(3)]).default(3),
  /** Seconds; sub-second only with VRRPv3. */
  advertInterval: z.number().positive().default(0.2),
  unicast: z.boolean().default(true),
  /**
   * Default: on in vrrp mode, off (and refused) in etcd mode. In vrrp mode the track file
   * lifts only the current master, so when a drained or failed master leaves, the
   * backups race on skew timers 8 ms apart (priorities 10 apart, advert 0.2 s); on a busy
   * host the lower one can win, and without nopreempt the higher one then takes the VIP
   * from it, resetting every connection accepted in between (measured in the lab: up to
   * 7 failed commands per drain).
   */
  nopreempt: z.boolean().optional(),
  preemptDelaySeconds: z.int().nonnegative().optional(),
  /** keepalived's vrrp_script backstop on /healthz (whole seconds). */
  healthCheckIntervalSeconds: z.int().min(1).default(1),
  authPassword: z.string().max(8).optional(),
  /** vrrp_instance name; notify_fifo lines carry it (`INSTANCE "VI_1" MASTER 150`). */
  instance: name.default('VI_1'),
  /**
   * curl's --max-time for the /healthz backstop; below healthCheckIntervalSeconds. A
   * gateway absorbing a burst (the connections a VIP drain held arrive together) can
   * answer late: with 0.5 s and fall 2 the lab's new leader was demoted and every
   * connection on the VIP reset.
   */
  healthCheckTimeoutSeconds: z.number().positive().default(0.9),
  /** Consecutive /healthz failures before FAULT, successes before recovery. */
  healthCheckFall: z.int().min(1).default(3),
  healthCheckRise: z.int().min(1).default(2),
  /** Absolute path of curl on the nodes (keepalived refuses relative or world-writable script paths). */
  curl: z.string().startsWith('/').default('/usr/bin/curl'),
  /** keepalived's script_user (with enable_script_security): an unprivileged account that runs the check. */
  scriptUser: z.string().min(1).default('keepalived_script'),
  /** Where keepalived.conf goes on the nodes (install.sh, doctor). */
  configPath: z.string().startsWith('/').default('/etc/keepalived/keepalived.conf'),
  /** vrrp mode: keepalived's parent pid file (-p); leadership needs this process alive. */
  keepalivedPidFile: z.string().startsWith('/').default('/run/keepalived.pid'),
  /** vrrp mode: keepalived's VRRP child pid file (-r); when set, that process must be alive too. */
  keepalivedVrrpPidFile: z.string().startsWith('/').optional(),
  /** vrrp mode: how often the VIP and keepalived are re-checked besides notify FIFO events (ms). */
  pollIntervalMs: z.int().min(20).max(5000).default(150),
  /** vrrp mode: how often peers' GET /leader is asked (leader name, epochs); 0 disables. */
  peerPollIntervalMs: z.int().min(0).default(1000),
});

export const systemdSettingsSchema = z.strictObject({
  /** Unit name (without .service). */
  unit: name.default('execgate'),
  /** The node binary and execgate's built CLI on the nodes (the Debian package's own Node runtime). */
  nodeBinary: z.string().startsWith('/').default('/opt/execgate/node/bin/node'),
  cli: z.string().startsWith('/').default('/opt/execgate/dist/src/cli.js'),
  /** Where this cluster file lives on every node. */
  clusterFile: z.string().startsWith('/').default('/etc/execgate/cluster.yaml'),
  /** systemd's watchdog; default: (ttl - margin) / 2 in etcd mode, 5 s otherwise. Must stay below ttl - margin. */
  watchdogSeconds: z.number().positive().optional(),
  /**
   * "standard" sandboxes the gateway only where its commands cannot notice;
   * "strict" adds NoNewPrivileges, a read-only system and a capability bounding set
   * (commands can then no longer use sudo/su or write outside ReadWritePaths).
   */
  hardening: z.enum(['standard', 'strict']).default('standard'),
  /** strict only: paths commands may still write. */
  readWritePaths: z.array(z.string().startsWith('/')).default([]),
});

export const clusterSchema = z.strictObject({
  cluster: name,
  vip: z.strictObject({
    address: z.ipv4(),
    prefixLength: z.int().min(1).max(32).default(24),
    interface: z.string().min(1).default('eth0'),
    /** The SSH port clients use on the VIP. */
    sshPort: port.default(22),
    /**
     * How the VIP's SSH port coexists with the node's own sshd: "nonlocal" binds
     * VIP:sshPort with net.ipv4.ip_nonlocal_bind=1 (sshd keeps port 22 on the node
     * address); "node-port" has clients use the node port on the VIP.
     */
    bind: z.enum(['nonlocal', 'node-port']).default('nonlocal'),
  }),
  vrrp: vrrpSettingsSchema.prefault({}),
  leadership: leadershipSettingsSchema.prefault({}),
  /** keepalived's track_file, written by execgate: 100 leader, 0 standby, -254 stepping down. */
  trackFile: z.string().startsWith('/').default('/run/execgate/keepalived.track'),
  /** keepalived's notify_fifo, read by execgate (vrrp mode). */
  notifyFifo: z.string().startsWith('/').default('/run/execgate/keepalived.fifo'),
  stateDir: z.string().startsWith('/').default('/var/lib/execgate'),
  loadBalancers: z.array(z.ipv4()).default([]),
  haproxy: z
    .strictObject({
      sshPort: port.default(22),
      statsPort: port.default(8404),
      bind: z.string().default('*'),
      /** PROXY protocol v2 to the gateways (they must list the balancers in gateway.proxyProtocol.trustedProxies). */
      sendProxy: z.boolean().default(true),
      /**
       * Health check timing (ms). A drain's handover takes about two check intervals
       * (the next in line's 200, then the leader's 404), so keep interMs small.
       */
      interMs: z.int().min(10).default(100),
      fastinterMs: z.int().min(10).default(100),
      downinterMs: z.int().min(10).default(100),
      fall: z.int().min(1).default(2),
      /**
       * How long one check may take. A server marked DOWN has its sessions shut down:
       * with 200 ms, a new leader busy for a moment lost 12 running sessions twice in
       * one lab drain. A dead host still fails at once (connection refused or reset).
       */
      checkTimeoutMs: z.int().min(10).default(1000),
      /**
       * Only the leader (or the next in line it hands over to) answers 200, so one 200
       * is enough to send it traffic; a DOWN server needs `rise` of them (measured:
       * a 404 does not bring a DOWN server back as "stopping").
       */
      rise: z.int().min(1).default(1),
      /** Client/server inactivity timeout: jobs may be silent for hours. */
      timeoutHours: z.number().positive().default(12),
      stateFile: z.string().startsWith('/').default('/var/lib/haproxy/server-state'),
      configPath: z.string().startsWith('/').default('/etc/haproxy/haproxy.cfg'),
    })
    .prefault({}),
  systemd: systemdSettingsSchema.prefault({}),
  /**
   * Settings every node shares (same keys as a single-node config, minus node/listen);
   * authorizedKeys defaults to one file per SSH user, /etc/execgate/authorized_keys/%u.
   */
  gateway: configSchema.omit({ node: true, listen: true }).extend({
    authorizedKeys: configSchema.shape.authorizedKeys.default(DEFAULT_CLUSTER_AUTHORIZED_KEYS),
  }),
  nodes: z.array(clusterNodeSchema).min(1),
});

export type Cluster = z.infer<typeof clusterSchema>;
export type ClusterNode = z.infer<typeof clusterNodeSchema>;
export type ClusterInput = z.input<typeof clusterSchema>;
