/**
 * How the lab's etcd is secured, as a production cluster is: mutual TLS on the client and
 * peer ports (certificates from `makeClusterCerts`, one CA for the run), etcd's own
 * authentication with a user whose role covers only the cluster's keys (`execgate
 * etcd-setup`), and the lab's own reads through execgate's etcd client with those
 * credentials. Everything lives in the run's directory, which every host sees; the
 * private keys and passwords are 0600.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EtcdConnectionSettings } from '../../../src/config/etcdConnection.js';
import { certPaths, type CertPaths } from '../../../src/certs/paths.js';
import type { NodeSpec } from './topology.js';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const ETCD_PREFIX = '/execgate-lab';
/** The etcd user with no role that the intruder scenario logs in as. */
export const INTRUDER_USER = 'intruder';

/** Where the run's certificates, keys and passwords are (execgate certs --dir). */
export const pkiDir = (dir: string): string => join(dir, 'etcd-pki');

/** The run's certificates, keys and passwords (makeClusterCerts' layout). */
export const labCerts = (dir: string): CertPaths => certPaths(pkiDir(dir));

export const etcdEndpoint = (address: string): string => `https://${address}:${ETCD_CLIENT_PORT}`;

/** The cluster file's leadership.etcd connection: https, each gateway's own certificate (%n), the execgate user. */
export function etcdConnection(dir: string, nodes: NodeSpec[]): EtcdConnectionSettings {
  const f = labCerts(dir);
  return {
    endpoints: nodes.map((g) => etcdEndpoint(g.address)),
    tls: { caFile: f.ca, certFile: f.gateway('%n').cert, keyFile: f.gateway('%n').key },
    auth: { user: 'execgate', passwordFile: f.password },
    insecure: false,
  };
}

/** The same connection as etcd's root user (the lab's setup only). */
export function rootConnection(dir: string, nodes: NodeSpec[]): EtcdConnectionSettings {
  return { ...etcdConnection(dir, nodes), auth: { user: 'root', passwordFile: labCerts(dir).rootPassword } };
}

/** etcd's flags for mutual TLS on both ports: one certificate per member, client and peer, the run's CA. */
export function memberTlsFlags(dir: string, name: string): string[] {
  const f = labCerts(dir);
  const { cert, key } = f.member(name);
  return [
    '--cert-file',
    cert,
    '--key-file',
    key,
    '--trusted-ca-file',
    f.ca,
    '--client-cert-auth',
    '--peer-cert-file',
    cert,
    '--peer-key-file',
    key,
    '--peer-trusted-ca-file',
    f.ca,
    '--peer-client-cert-auth',
  ];
}

/**
 * An intruder's client certificate from a CA of its own (openssl, in the run's directory):
 * well-formed, valid, without a common name, but not signed by the cluster's CA.
 */
export function foreignClientCert(dir: string): { ca: string; cert: string; key: string } {
  const d = join(dir, 'intruder');
  const out = { ca: join(d, 'ca.pem'), cert: join(d, 'client.pem'), key: join(d, 'client-key.pem') };
  if (existsSync(out.cert)) return out;
  mkdirSync(d, { recursive: true, mode: 0o700 });
  const caKey = join(d, 'ca-key.pem');
  const csr = join(d, 'client.csr');
  const ext = join(d, 'client.ext');
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', caKey, '-out', out.ca, '-days', '2', '-subj', '/O=intruder CA']);
  openssl(['req', ...ec, '-keyout', out.key, '-out', csr, '-subj', '/O=intruder']);
  writeFileSync(ext, 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  openssl(['x509', '-req', '-in', csr, '-CA', out.ca, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', out.cert]);
  chmodSync(out.key, 0o600);
  chmodSync(caKey, 0o600);
  return out;
}
