/**
 * The few openssl(1) operations `execgate certs` needs: ECDSA P-256 keys, a self-signed
 * CA and leaf certificates it signs, each with an explicit extension section (no reliance
 * on the system's openssl.cnf defaults).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errors } from '../errors.js';

export const OPENSSL = process.env.EXECGATE_OPENSSL ?? 'openssl';

function openssl(args: string[]): string {
  try {
    return execFileSync(OPENSSL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw errors.opensslMissing(OPENSSL);
    throw errors.opensslFailed(args.slice(0, 2).join(' '), (e.stderr ?? e.message).trim());
  }
}

/** A subject with no common name: etcd's JSON gateway refuses client certificates that have one. */
export function subjectOf(cluster: string): string {
  return `/O=execgate/OU=${cluster}`;
}

/** An ECDSA P-256 private key (PKCS#8 PEM), mode 0600. */
export function makeKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  chmodSync(path, 0o600);
}

function withTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-certs-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A positive 127-bit serial in hex (RFC 5280: at most 20 octets, unpredictable). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return `0x${b.toString('hex')}`;
}

/** An openssl config of our own (not the system's openssl.cnf): the subject comes from -subj, the extensions from `section`. */
function writeExtensionsConfig(path: string, section: string, extensions: string[]): void {
  writeFileSync(path, ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', `[${section}]`, ...extensions, ''].join('\n'));
}

/** A self-signed CA certificate for `keyPath`. */
export function makeCaCert(keyPath: string, certPath: string, cluster: string, days: number): void {
  withTemp((tmp) => {
    const conf = join(tmp, 'ca.cnf');
    writeExtensionsConfig(conf, 'v3_ca', ['basicConstraints = critical, CA:TRUE, pathlen:0', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash']);
    const subject = `${subjectOf(cluster)}/CN=execgate ${cluster} etcd CA`;
    openssl(['req', '-x509', '-new', '-config', conf, '-extensions', 'v3_ca', '-key', keyPath, '-sha256', '-days', String(days), '-set_serial', serial(), '-subj', subject, '-out', certPath]);
  });
}

export interface LeafSpec {
  subject: string;
  /** e.g. ["IP:127.0.0.1", "DNS:localhost"] */
  sans: string[];
  extendedKeyUsage: Array<'serverAuth' | 'clientAuth'>;
  days: number;
}

/** A leaf certificate for `keyPath`, signed by the CA. */
export function makeLeafCert(keyPath: string, certPath: string, ca: { cert: string; key: string }, spec: LeafSpec): void {
  withTemp((tmp) => {
    const conf = join(tmp, 'leaf.cnf');
    const csr = join(tmp, 'leaf.csr');
    writeExtensionsConfig(conf, 'v3_leaf', [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      `extendedKeyUsage = ${spec.extendedKeyUsage.join(', ')}`,
      `subjectAltName = ${spec.sans.join(', ')}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ]);
    openssl(['req', '-new', '-config', conf, '-key', keyPath, '-subj', spec.subject, '-out', csr]);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      serial(),
      '-sha256',
      '-days',
      String(spec.days),
      '-extfile',
      conf,
      '-extensions',
      'v3_leaf',
      '-out',
      certPath,
    ]);
  });
}

/** `openssl verify -CAfile ca cert`: null when it verifies, else openssl's words. */
export function verifyCert(caPath: string, certPath: string): string | null {
  try {
    openssl(['verify', '-CAfile', caPath, certPath]);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
