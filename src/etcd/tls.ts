/**
 * Mutual TLS to etcd with Node's own TLS stack: the CA that signs the members' server
 * certificates, this node's client certificate and key, host name (or IP) verification on.
 * Files are read once at start and checked like host keys; a handshake failure is told in
 * words naming the file to look at and the endpoint.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { errors } from '../errors.js';
import { expandNodePath } from '../config/etcdConnection.js';
import { readPrivateFile } from './privateFile.js';

export interface EtcdTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface EtcdTlsMaterial extends EtcdTlsFiles {
  /** The config key the files came from, e.g. "leadership.etcd.tls" (named in errors). */
  key: string;
  ca: Buffer;
  cert: Buffer;
  privateKey: Buffer;
  /** When the client certificate stops being valid. */
  certNotAfter: Date;
}

/** The subset of fetch the etcd client uses (global fetch satisfies it). */
export type EtcdFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<{ status: number; ok: boolean; text(): Promise<string> }>;

const MISSING = 'does not exist (make it with: execgate certs --cluster FILE --dir DIR)';

function readPublicFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw errors.etcdTlsFile(key, path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? MISSING : (err as Error).message);
  }
}

function parseCertificate(pem: Buffer, path: string, key: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw errors.etcdTlsFile(key, path, `is not a PEM certificate (${(err as Error).message})`);
  }
}

/** Reads and checks the TLS files of one etcd connection (`%n` is the node's name). */
export function loadEtcdTls(files: EtcdTlsFiles, node: string, key: string): EtcdTlsMaterial {
  const caFile = expandNodePath(files.caFile, node);
  const certFile = expandNodePath(files.certFile, node);
  const keyFile = expandNodePath(files.keyFile, node);
  const ca = readPublicFile(caFile, `${key}.caFile`);
  parseCertificate(ca, caFile, `${key}.caFile`);
  const cert = readPublicFile(certFile, `${key}.certFile`);
  const x509 = parseCertificate(cert, certFile, `${key}.certFile`);
  const privateKey = readPrivateFile(keyFile, (problem) => errors.etcdTlsFile(`${key}.keyFile`, keyFile, problem), MISSING);
  if (!x509.checkPrivateKey(createPrivateKeyOrThrow(privateKey, keyFile, `${key}.keyFile`))) {
    throw errors.etcdTlsFile(`${key}.keyFile`, keyFile, `is not the key of ${certFile}; install the pair made together by execgate certs`);
  }
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() < Date.now()) {
    throw errors.etcdTlsFile(`${key}.certFile`, certFile, `expired on ${notAfter.toISOString()}; make a new one with execgate certs (see docs/etcd-security.md, "Rotation")`);
  }
  return { key, caFile, certFile, keyFile, ca, cert, privateKey, certNotAfter: notAfter };
}

function createPrivateKeyOrThrow(pem: Buffer, path: string, key: string) {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw errors.etcdTlsFile(key, path, `is not a PEM private key (${(err as Error).message})`);
  }
}
/**
 * A fetch over mutual TLS with kept-alive connections (a handshake per request would add
 * its round trips to every lease keepalive).
 */
export function tlsFetch(tls: EtcdTlsMaterial): { fetch: EtcdFetch; close(): void } {
  return httpsFetch(new Agent({ ca: tls.ca, cert: tls.cert, key: tls.privateKey, keepAlive: true, maxSockets: 64 }));
}

/** A fetch through one https Agent (its CA, client certificate and connection reuse). */
export function httpsFetch(agent: Agent): { fetch: EtcdFetch; close(): void } {
  const fetchImpl: EtcdFetch = (url, init) =>
    new Promise((resolve, reject) => {
      const req = request(url, { method: init.method, headers: init.headers, agent, signal: init.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status, ok: status >= 200 && status < 300, text: async () => body });
        });
      });
      req.on('error', reject);
      req.end(init.body);
    });
  return { fetch: fetchImpl, close: () => agent.destroy() };
}

const HANDSHAKE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/**
 * A TLS failure in words: which side refused, and the file to look at. null when the
 * error is not about TLS (a refused connection, a timeout).
 */
export function describeTlsFailure(err: unknown, tls: Pick<EtcdTlsMaterial, 'key' | 'caFile' | 'certFile'>): string | null {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const message = e.message ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `TLS: the member's certificate does not name this address (${message}); remake its server certificate with the address in its SANs (execgate certs), or use the name the certificate has in the endpoint`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `TLS: the member's certificate has expired; make a new one with execgate certs and restart that member`;
  if (HANDSHAKE_CODES.has(code)) {
    return `TLS: the member's certificate is not signed by the CA in ${tls.key}.caFile (${tls.caFile}) (${code}); install the CA that signed the etcd members' certificates there`;
  }
  if (
    /alert (bad certificate|unknown ca|certificate required|certificate unknown|certificate expired)|tlsv13 alert certificate required/i.test(message) ||
    code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'
  ) {
    return `TLS: the member refused this node's client certificate ${tls.key}.certFile (${tls.certFile}) (${message.trim()}); it must be signed by the CA the members trust (--trusted-ca-file)`;
  }
  if (code === 'EPROTO' || /wrong version number|packet length too long|ssl/i.test(message)) {
    return `TLS: the handshake failed (${message.trim()}); is the member serving https on this port (--cert-file, --listen-client-urls https://)?`;
  }
  return null;
}
