/**
 * `execgate certs`: the credentials a cluster needs to reach etcd over mutual TLS with
 * etcd's own authentication. One CA (kept and reused: running again issues leaf
 * certificates from the same CA, which is how they are rotated), a certificate per etcd
 * member (server and client, for client and peer traffic), a client certificate per
 * gateway (no common name: etcd's JSON gateway refuses one that has it), and the
 * passwords of the execgate and root etcd users.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Cluster } from '../config/cluster.js';
import { errors } from '../errors.js';
import { certPaths, ETCD_MEMBER_INSTALL, GATEWAY_ETCD_INSTALL } from './paths.js';
import { makeCaCert, makeKey, makeLeafCert, subjectOf } from './openssl.js';

export const CA_DAYS = 3650;
export const DEFAULT_LEAF_DAYS = 365;

export interface CertsFile {
  path: string;
  /** What it is, in words. */
  what: string;
  made: boolean;
  /** Where install.sh puts it (or why it stays in the directory). */
  installTo: string;
  /** A certificate's expiry. */
  notAfter?: Date;
}

export interface CertsReport {
  dir: string;
  files: CertsFile[];
  /** The etcd members, one per host in leadership.etcd.endpoints. */
  members: Array<{ name: string; host: string; sans: string[] }>;
}

/** One etcd member per distinct endpoint host, named after the node with that address. */
export function etcdMembers(cluster: Cluster): Array<{ name: string; host: string; sans: string[] }> {
  const hosts = [...new Set((cluster.leadership.etcd?.endpoints ?? []).map((e) => new URL(e).hostname.replace(/^\[|\]$/g, '')))];
  return hosts.map((host) => {
    const name = cluster.nodes.find((n) => n.address === host)?.name ?? host;
    const sans = [isIP(host) ? `IP:${host}` : `DNS:${host}`, 'IP:127.0.0.1', 'DNS:localhost', `DNS:${name}`];
    return { name, host, sans: [...new Set(sans)] };
  });
}

function notAfter(path: string): Date {
  return new Date(new X509Certificate(readFileSync(path)).validTo);
}

function writeSecret(path: string): void {
  writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

export function makeClusterCerts(cluster: Cluster, dir: string, opts: { days?: number; force?: boolean } = {}): CertsReport {
  const days = opts.days ?? DEFAULT_LEAF_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > CA_DAYS) throw errors.certsDays(String(days), CA_DAYS);
  const p = certPaths(dir);
  for (const d of [p.dir, p.etcdDir, p.gatewaysDir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(d, 0o700);
  }
  const files: CertsFile[] = [];
  // The CA: reused whenever present, so every leaf made later chains to the one the members trust.
  const caPresent = existsSync(p.ca);
  if (caPresent && !existsSync(p.caKey)) throw errors.certsCaKeyMissing(p.ca, p.caKey);
  if (!caPresent) {
    makeKey(p.caKey);
    makeCaCert(p.caKey, p.ca, cluster.cluster, CA_DAYS);
  }
  chmodSync(p.caKey, 0o600);
  const ca = { cert: p.ca, key: p.caKey };
  files.push({
    path: p.ca,
    what: `CA of cluster "${cluster.cluster}"`,
    made: !caPresent,
    installTo: `${GATEWAY_ETCD_INSTALL.ca} on every gateway, ${ETCD_MEMBER_INSTALL.ca} on every etcd member`,
    notAfter: notAfter(p.ca),
  });
  files.push({ path: p.caKey, what: 'CA private key', made: !caPresent, installTo: 'stays here (offline): it signs every certificate; never copy it to a node' });

  const leaf = (cert: string, key: string, what: string, installTo: [string, string], spec: Parameters<typeof makeLeafCert>[3]) => {
    const make = opts.force === true || !existsSync(cert) || !existsSync(key);
    if (make) {
      makeKey(key);
      makeLeafCert(key, cert, ca, spec);
    }
    chmodSync(key, 0o600);
    files.push({ path: cert, what, made: make, installTo: installTo[0], notAfter: notAfter(cert) });
    files.push({ path: key, what: `${what}: private key`, made: make, installTo: installTo[1] });
  };

  const members = etcdMembers(cluster);
  for (const m of members) {
    const f = p.member(m.name);
    leaf(f.cert, f.key, `etcd member ${m.name} (${m.host}): server and client certificate`, [`${ETCD_MEMBER_INSTALL.cert} on ${m.name}`, `${ETCD_MEMBER_INSTALL.key} on ${m.name}`], {
      subject: subjectOf(cluster.cluster),
      sans: m.sans,
      extendedKeyUsage: ['serverAuth', 'clientAuth'],
      days,
    });
  }
  for (const n of cluster.nodes) {
    const f = p.gateway(n.name);
    leaf(f.cert, f.key, `gateway ${n.name}: etcd client certificate`, [`${GATEWAY_ETCD_INSTALL.cert} on ${n.name}`, `${GATEWAY_ETCD_INSTALL.key} on ${n.name}`], {
      subject: subjectOf(cluster.cluster),
      sans: [`DNS:${n.name}`],
      extendedKeyUsage: ['clientAuth'],
      days,
    });
  }

  // Passwords: made once; a new one is rotated in by deleting the file and running etcd-setup --apply.
  for (const [path, what, installTo] of [
    [p.password, `password of etcd user "${cluster.leadership.etcd?.auth?.user ?? 'execgate'}"`, `${GATEWAY_ETCD_INSTALL.password} on every gateway`],
    [p.rootPassword, 'password of etcd user "root"', 'stays here: execgate etcd-setup --apply reads it (--root-password-file)'],
  ] as const) {
    const make = !existsSync(path);
    if (make) writeSecret(path);
    chmodSync(path, 0o600);
    files.push({ path, what, made: make, installTo });
  }
  return { dir, files, members };
}
