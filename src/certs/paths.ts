/**
 * Where `execgate certs` writes a cluster's etcd credentials, and where install.sh puts
 * each file on a node. One directory per cluster, kept by the operator (the CA key and
 * the root password never leave it).
 */
import { join } from 'node:path';
import { DEFAULT_ETCD_PASSWORD_FILE, DEFAULT_ETCD_TLS } from '../config/etcdConnection.js';

export interface CertPaths {
  dir: string;
  ca: string;
  caKey: string;
  etcdDir: string;
  gatewaysDir: string;
  /** The execgate etcd user's password (every gateway). */
  password: string;
  /** etcd's root user's password (only etcd-setup --apply uses it). */
  rootPassword: string;
  /** One etcd member's certificate and key (client and peer traffic). */
  member(name: string): { cert: string; key: string };
  /** One gateway's client certificate and key. */
  gateway(node: string): { cert: string; key: string };
}

export function certPaths(dir: string): CertPaths {
  const etcdDir = join(dir, 'etcd');
  const gatewaysDir = join(dir, 'gateways');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    etcdDir,
    gatewaysDir,
    password: join(dir, 'etcd-password'),
    rootPassword: join(dir, 'etcd-root-password'),
    member: (name) => ({ cert: join(etcdDir, `${name}.pem`), key: join(etcdDir, `${name}-key.pem`) }),
    gateway: (node) => ({ cert: join(gatewaysDir, `${node}.pem`), key: join(gatewaysDir, `${node}-key.pem`) }),
  };
}

/** Where install.sh puts an etcd member's files (the member's --trusted-ca-file, --cert-file, --key-file and their --peer-* twins). */
export const ETCD_MEMBER_INSTALL = {
  ca: '/etc/etcd/execgate/ca.pem',
  cert: '/etc/etcd/execgate/server.pem',
  key: '/etc/etcd/execgate/server-key.pem',
} as const;

/** Where install.sh puts a gateway's files: the defaults of leadership.etcd.tls and .auth. */
export const GATEWAY_ETCD_INSTALL = {
  ca: DEFAULT_ETCD_TLS.caFile,
  cert: DEFAULT_ETCD_TLS.certFile,
  key: DEFAULT_ETCD_TLS.keyFile,
  password: DEFAULT_ETCD_PASSWORD_FILE,
} as const;
