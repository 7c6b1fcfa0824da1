/**
 * The doctor's etcd checks (docs/etcd-security.md): how each etcd connection of the cluster
 * file is protected (TLS, authentication), this node's TLS files, how long every certificate
 * in play stays valid (this node's client certificate, the CA, each member's server
 * certificate from a handshake), each member's /health over mutual TLS, and a login plus a
 * read of the cluster's keys as the gateway does them.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import type { Cluster, ClusterNode } from '../config/cluster.js';
import { withEtcdDefaults, type EtcdConnectionSettings } from '../config/etcdConnection.js';
import { connectEtcd } from '../etcd/connect.js';
import { describeTlsFailure, loadEtcdTls, type EtcdTlsMaterial } from '../etcd/tls.js';
import { etcdHealth } from './peers.js';
import type { Row } from './report.js';

/** A certificate that ends within this many days fails: time to rotate (docs/etcd-security.md, "Rotation"). */
export const EXPIRY_DAYS = 30;
const DAY_MS = 86_400_000;

export interface EtcdBlock {
  /** The config key, e.g. "leadership.etcd". */
  key: string;
  settings: EtcdConnectionSettings;
  /** The keys the gateway reads and writes there (the probe reads them). */
  prefix: string;
}

/**
 * The etcd connections the cluster file names: leadership's, and run-once's (its own block,
 * or leadership.etcd, which run-once uses when it names none, also in vrrp or static mode).
 */
export function etcdBlocks(cluster: Cluster): EtcdBlock[] {
  const blocks: EtcdBlock[] = [];
  const l = cluster.leadership.etcd;
  const base = l && `${l.prefix.replace(/\/+$/, '')}/${cluster.cluster}/`;
  if (cluster.leadership.source === 'etcd' && l) blocks.push({ key: 'leadership.etcd', settings: l, prefix: base! });
  const r = cluster.gateway.runOnce;
  if (r.enabled && r.etcd) blocks.push({ key: 'gateway.runOnce.etcd', settings: r.etcd, prefix: `${r.etcd.prefix.replace(/\/+$/, '')}/` });
  else if (r.enabled && l && cluster.leadership.source !== 'etcd') blocks.push({ key: 'leadership.etcd', settings: l, prefix: `${base!}run-once/` });
  return blocks;
}

const CERTS_FIX = 'make them with execgate certs --cluster FILE --dir DIR and install them with deploy/install.sh ... --etcd-certs DIR (docs/etcd-security.md)';

/** How one connection is protected: transport and authentication, each a row with its fix. */
export function etcdPostureRows(b: EtcdBlock): Row[] {
  const plain = b.settings.endpoints.some((e) => e.startsWith('http:'));
  const target = b.key;
  const rows: Row[] = [];
  rows.push(
    plain
      ? {
          check: 'etcd transport',
          target,
          verdict: 'fail',
          detail: `plain HTTP etcd (${b.key}.insecure: true): anyone who reaches ${b.settings.endpoints.join(', ')} can delete the election key, take the lead or forge run-once claims, and read every key`,
          fix: `use https:// endpoints with ${b.key}.tls: ${CERTS_FIX}; then remove insecure`,
        }
      : { check: 'etcd transport', target, verdict: 'ok', detail: 'https with mutual TLS (this node presents its client certificate)' },
  );
  rows.push(
    b.settings.auth
      ? { check: 'etcd auth', target, verdict: 'ok', detail: `user ${b.settings.auth.user}, password in ${b.settings.auth.passwordFile}` }
      : {
          check: 'etcd auth',
          target,
          verdict: 'fail',
          detail: `etcd without authentication: any client that gets through may write every key, other clusters' and etcd's own configuration included`,
          fix: `add ${b.key}.auth (user, passwordFile) to the cluster file and run once: execgate etcd-setup --cluster FILE --apply --root-password-file F (a user whose role covers only ${b.prefix})`,
        },
  );
  return rows;
}

/** A certificate's remaining validity: fail when expired or within EXPIRY_DAYS. */
export function expiryRow(check: string, target: string, what: string, notAfter: Date, fix: string, now: Date = new Date()): Row {
  const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
  const when = notAfter.toISOString().slice(0, 10);
  if (notAfter.getTime() <= now.getTime()) return { check, target, verdict: 'fail', detail: `${what} expired on ${when}`, fix };
  if (days < EXPIRY_DAYS) return { check, target, verdict: 'fail', detail: `${what} expires on ${when}, in ${days} day${days === 1 ? '' : 's'} (less than ${EXPIRY_DAYS})`, fix };
  return { check, target, verdict: 'ok', detail: `${what} valid until ${when} (${days} days)` };
}

/** Every certificate in a PEM file (a CA file holds two while the CA is rotated). */
export function pemCertificates(pem: Buffer | string): X509Certificate[] {
  const blocks = pem.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** A member's server certificate, from a handshake with this node's client certificate. */
export function memberCertificate(endpoint: string, tls: EtcdTlsMaterial, timeoutMs: number): Promise<{ notAfter: Date; subject: string } | { error: string }> {
  const url = new URL(endpoint);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(url.port || 2379), ca: tls.ca, cert: tls.cert, key: tls.privateKey, ...(isIP(host) ? {} : { servername: host }) });
    const timer = setTimeout(() => finish({ error: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
    const finish = (r: { notAfter: Date; subject: string } | { error: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      finish(peer.valid_to ? { notAfter: new Date(peer.valid_to), subject: String(peer.subject?.CN ?? '') } : { error: 'the member sent no certificate' });
    });
    socket.once('error', (err) => finish({ error: describeTlsFailure(err, tls) ?? (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

/** A login and a read of the block's prefix, as the gateway does them; failures in words. */
async function probeRow(b: EtcdBlock, node: string, timeoutMs: number): Promise<Row> {
  const check = 'etcd login and read';
  let client: ReturnType<typeof connectEtcd> | undefined;
  try {
    client = connectEtcd(b.settings, { node, key: b.key, requestTimeoutMs: timeoutMs });
    const r = await client.rangePrefix(b.prefix);
    const who = b.settings.auth ? `logged in as ${b.settings.auth.user}, ` : '';
    return { check, target: b.key, verdict: 'ok', detail: `${who}read ${r.kvs.length} key(s) under ${b.prefix}` };
  } catch (err) {
    const message = (err as Error).message;
    const denied = /permission denied/i.test(message);
    return {
      check,
      target: b.key,
      verdict: 'fail',
      detail: denied ? `etcd refused the read of ${b.prefix}: the user ${b.settings.auth?.user ?? '(none)'} has no role covering it (${message})` : message,
      fix: denied
        ? 'run execgate etcd-setup --cluster FILE --apply: it grants the role execgate-<cluster> read and write on the prefix'
        : 'see the detail; the login and the TLS files are the gateway’s own (docs/etcd-security.md)',
    };
  } finally {
    client?.close();
  }
}

/** Every etcd row: protection, this node's files and certificates, members, health, the probe. */
export async function etcdRows(cluster: Cluster, here: ClusterNode | undefined, timeoutMs: number, now: Date = new Date()): Promise<Row[]> {
  const rows: Row[] = [];
  const healthChecked = new Set<string>();
  for (const b of etcdBlocks(cluster)) {
    rows.push(...etcdPostureRows(b));
    const s = withEtcdDefaults(b.settings);
    let tls: EtcdTlsMaterial | undefined;
    if (s.tls && !here) {
      rows.push({ check: 'etcd TLS files', target: b.key, verdict: 'skip', detail: "give --node NAME on a gateway to check its client certificate, the CA and the members' certificates" });
    } else if (s.tls && here) {
      try {
        tls = loadEtcdTls(s.tls, here.name, `${b.key}.tls`);
        rows.push({ check: 'etcd TLS files', target: here.name, verdict: 'ok', detail: `${tls.caFile}, ${tls.certFile}, ${tls.keyFile}: readable, key private, matching` });
      } catch (err) {
        rows.push({ check: 'etcd TLS files', target: here.name, verdict: 'fail', detail: (err as Error).message, fix: CERTS_FIX });
      }
    }
    if (tls) {
      const rotate = 'rotate it: docs/etcd-security.md, "Rotation" (execgate certs --force with the same CA, install, restart)';
      rows.push(expiryRow('etcd certificate', here!.name, `client certificate ${tls.certFile}`, tls.certNotAfter, rotate, now));
      for (const ca of pemCertificates(tls.ca)) {
        rows.push(
          expiryRow(
            'etcd certificate',
            here!.name,
            `CA ${ca.subject.replace(/\n/g, ', ')} in ${tls.caFile}`,
            new Date(ca.validTo),
            'make a new CA and put old and new in caFile first: docs/etcd-security.md, "Rotation"',
            now,
          ),
        );
      }
      for (const endpoint of s.endpoints) {
        const m = await memberCertificate(endpoint, tls, timeoutMs);
        if ('error' in m) {
          rows.push({
            check: 'etcd certificate',
            target: endpoint,
            verdict: 'fail',
            detail: m.error,
            fix: `on that member: systemctl status etcd; its certificate comes from execgate certs (${CERTS_FIX})`,
          });
        } else {
          rows.push(
            expiryRow(
              'etcd certificate',
              endpoint,
              `server certificate${m.subject ? ` ${m.subject}` : ''}`,
              m.notAfter,
              `make a new server certificate for that member (execgate certs --force, same CA), install it and restart the member`,
              now,
            ),
          );
        }
      }
    }
    for (const endpoint of s.endpoints) {
      if (healthChecked.has(endpoint)) continue;
      healthChecked.add(endpoint);
      if (s.tls && !tls) {
        rows.push({ check: 'etcd health', target: endpoint, verdict: 'skip', detail: "needs this node's client certificate (see etcd TLS files)" });
        continue;
      }
      const h = await etcdHealth(endpoint, timeoutMs, tls);
      rows.push({
        check: 'etcd health',
        target: h.endpoint,
        verdict: h.ok ? 'ok' : 'fail',
        detail: h.detail,
        ...(h.ok ? {} : { fix: 'on that member: systemctl status etcd; etcdctl endpoint health --cluster (a majority must be up for any leader)' }),
      });
    }
    if (here && (!s.tls || tls)) rows.push(await probeRow(b, here.name, timeoutMs));
  }
  return rows;
}
