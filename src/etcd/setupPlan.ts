/**
 * The least privilege a cluster's gateways need in etcd: one role that may read and write
 * only under the cluster's own prefix (election, handover and run-once keys), one user
 * with that role, and the root user and role etcd requires before authentication can be
 * turned on.
 */
import type { Cluster } from '../config/cluster.js';
import { DEFAULT_ETCD_PASSWORD_FILE, DEFAULT_ETCD_USER, withEtcdDefaults, type EtcdConnectionSettings } from '../config/etcdConnection.js';
import { errors } from '../errors.js';

export interface EtcdSetupPlan {
  cluster: string;
  /** `execgate-<cluster>` */
  role: string;
  user: string;
  /** Key prefixes the role may read and write, each ending in "/". */
  prefixes: string[];
  /** The user's password file (may hold `%n`). */
  passwordFile: string;
  /** The leadership.etcd connection: endpoints, TLS files (may hold `%n`). */
  connection: EtcdConnectionSettings;
}

export const ROOT = 'root';

const withSlash = (p: string) => (p.endsWith('/') ? p : `${p}/`);

export function etcdSetupPlan(cluster: Cluster): EtcdSetupPlan {
  const etcd = cluster.leadership.etcd;
  if (!etcd) throw errors.etcdSetupNoEtcd();
  const main = `${etcd.prefix.replace(/\/+$/, '')}/${cluster.cluster}/`;
  const prefixes = [main];
  const runOnce = cluster.gateway.runOnce.etcd?.prefix;
  if (runOnce !== undefined && !withSlash(runOnce).startsWith(main)) prefixes.push(withSlash(runOnce));
  const connection = withEtcdDefaults({ endpoints: etcd.endpoints, tls: etcd.tls, auth: etcd.auth, insecure: etcd.insecure });
  return {
    cluster: cluster.cluster,
    role: `execgate-${cluster.cluster}`,
    user: etcd.auth?.user ?? DEFAULT_ETCD_USER,
    prefixes,
    passwordFile: etcd.auth?.passwordFile ?? DEFAULT_ETCD_PASSWORD_FILE,
    connection,
  };
}
