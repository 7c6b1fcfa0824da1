import { z } from 'zod';

/**
 * How a gateway reaches etcd: `https://` endpoints with a CA, this node's client certificate
 * and key (mutual TLS), and an etcd user whose role covers only the cluster's key prefix.
 * Plain `http://` is refused unless `insecure: true` says so (doctor and /status flag it).
 *
 * `%n` in a file path is the node's name, so one cluster file can name a file per node
 * (several gateways on one host, as in the tests) while a node installed by install.sh
 * uses the fixed default paths.
 */
export const ETCD_FILES_DIR = '/etc/execgate/etcd';

export const DEFAULT_ETCD_TLS = {
  caFile: `${ETCD_FILES_DIR}/ca.pem`,
  certFile: `${ETCD_FILES_DIR}/client.pem`,
  keyFile: `${ETCD_FILES_DIR}/client-key.pem`,
} as const;

export const DEFAULT_ETCD_USER = 'execgate';
export const DEFAULT_ETCD_PASSWORD_FILE = `${ETCD_FILES_DIR}/password`;

const absolute = z.string().startsWith('/', 'an absolute path');

export const etcdTlsSchema = z.strictObject({
  /** The CA that signed the etcd members' server certificates. */
  caFile: absolute.default(DEFAULT_ETCD_TLS.caFile),
  /** This node's client certificate (no common name: etcd's JSON gateway refuses one that has it). */
  certFile: absolute.default(DEFAULT_ETCD_TLS.certFile),
  /** Its private key: owned by root or the gateway's account, mode 0600 or stricter. */
  keyFile: absolute.default(DEFAULT_ETCD_TLS.keyFile),
});

export const etcdAuthSchema = z.strictObject({
  user: z.string().min(1).default(DEFAULT_ETCD_USER),
  /** One line holding the user's password (mode 0600 or stricter, like http.tokenFile). */
  passwordFile: absolute.default(DEFAULT_ETCD_PASSWORD_FILE),
});

export const etcdConnectionShape = {
  endpoints: z.array(z.url({ protocol: /^https?$/ })).min(1, 'list at least one etcd client URL'),
  /** Mutual TLS; required (and defaulted) for https endpoints. */
  tls: etcdTlsSchema.optional(),
  /** etcd's own authentication: a user limited to the cluster's keys (execgate etcd-setup). */
  auth: etcdAuthSchema.optional(),
  /** Allows plain-HTTP endpoints: anyone who reaches etcd can then take or break the lead. */
  insecure: z.boolean().default(false),
};

export type EtcdConnectionSettings = {
  endpoints: string[];
  tls?: z.infer<typeof etcdTlsSchema>;
  auth?: z.infer<typeof etcdAuthSchema>;
  insecure: boolean;
};

/** Problems of one etcd connection block, each naming its key (`key` is e.g. "leadership.etcd"). */
export function etcdConnectionProblems(s: EtcdConnectionSettings, key: string): string[] {
  const problems: string[] = [];
  const schemes = new Set(s.endpoints.map((e) => new URL(e).protocol));
  if (schemes.size > 1) {
    problems.push(`${key}.endpoints: mixes http:// and https://; every member is reached the same way (https with ${key}.tls)`);
    return problems;
  }
  if (schemes.has('http:')) {
    if (!s.insecure) {
      problems.push(
        `${key}.endpoints: ${s.endpoints[0]} is plain HTTP: anyone who reaches it can delete the election key or forge run-once claims; ` +
          `use https:// endpoints with ${key}.tls (make the certificates with: execgate certs --cluster FILE --dir DIR), ` +
          `or set ${key}.insecure: true to accept that (a lab, never production)`,
      );
    }
    if (s.tls) problems.push(`${key}.tls: set, but the endpoints are http://; use https:// endpoints (or remove ${key}.tls)`);
  }
  return problems;
}

/** The connection with defaults filled in: https endpoints always have their TLS files. */
export function withEtcdDefaults(s: EtcdConnectionSettings): EtcdConnectionSettings {
  const https = s.endpoints.every((e) => e.startsWith('https:'));
  return https && !s.tls ? { ...s, tls: { ...DEFAULT_ETCD_TLS } } : s;
}

/** `%n` in a path is the node's name. */
export function expandNodePath(path: string, node: string): string {
  return path.replaceAll('%n', node);
}
