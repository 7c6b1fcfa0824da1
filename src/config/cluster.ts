import { z } from 'zod';
import { configSchema } from './schema.js';

/**
 * One cluster file describes every node; `execgate serve --cluster FILE --node NAME`
 * derives that node's gateway config from it, and `execgate render` derives the
 * keepalived, haproxy and systemd files from the same data.
 */
const port = z.int().min(1).max(65535);
const name = z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only');

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
  endpoints: z.array(z.url()).min(1, 'list at least one etcd client URL'),
  /** Requested lease TTL; etcd may grant more (read the granted TTL). */
  ttlSeconds: z.number().min(1).default(5),
  /** The leader fences itself this long before its lease could expire. */
  marginSeconds: z.number().positive().default(1),
  prefix: z.string().startsWith('/').default('/execgate'),
});

export const leadershipSettingsSchema = z.strictObject({
  source: z.enum(['static', 'vrrp', 'etcd']).default('etcd'),
  etcd: etcdSettingsSchema.optional(),
  /** vrrp and static only; etcd mode always terminates. */
  onLeadershipLoss: z.enum(['terminate', 'finish']).default('terminate'),
  drainTimeoutSeconds: z.number().positive().default(600),
});

export const vrrpSettingsSchema = z.strictObject({
  virtualRouterId: z.int().default(51),
  version: z.union([z.literal(2), z.literal(3)]).default(3),
  /** Seconds; sub-second only with VRRPv3. */
  advertInterval: z.number().positive().default(0.2),
  unicast: z.boolean().default(true),
  nopreempt: z.boolean().default(false),
  preemptDelaySeconds: z.int().nonnegative().optional(),
  /** keepalived's vrrp_script backstop on /healthz (whole seconds). */
  healthCheckIntervalSeconds: z.int().min(1).default(1),
  authPassword: z.string().max(8).optional(),
  /** vrrp_instance name; notify_fifo lines carry it (`INSTANCE "VI_1" MASTER 150`). */
  instance: name.default('VI_1'),
  /** vrrp mode: keepalived's parent pid file (-p); leadership needs this process alive. */
  keepalivedPidFile: z.string().startsWith('/').default('/run/keepalived.pid'),
  /** vrrp mode: keepalived's VRRP child pid file (-r); when set, that process must be alive too. */
  keepalivedVrrpPidFile: z.string().startsWith('/').optional(),
  /** vrrp mode: how often the VIP and keepalived are re-checked besides notify FIFO events (ms). */
  pollIntervalMs: z.int().min(20).max(5000).default(150),
  /** vrrp mode: how often peers' GET /leader is asked (leader name, epochs); 0 disables. */
  peerPollIntervalMs: z.int().min(0).default(1000),
});

export const clusterSchema = z
  .strictObject({
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
      })
      .prefault({}),
    /** Settings every node shares (same keys as a single-node config, minus node/listen). */
    gateway: configSchema.omit({ node: true, listen: true }),
    nodes: z.array(clusterNodeSchema).min(1),
  });

export type Cluster = z.infer<typeof clusterSchema>;
export type ClusterNode = z.infer<typeof clusterNodeSchema>;
