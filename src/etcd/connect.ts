/**
 * An EtcdClient from a connection block of the config (leadership.etcd, runOnce.etcd):
 * its TLS files read and checked, its password file read on every login.
 */
import { withEtcdDefaults, type EtcdConnectionSettings } from '../config/etcdConnection.js';
import { EtcdClient } from './client.js';
import { readEtcdPassword } from './password.js';
import { loadEtcdTls } from './tls.js';

export function connectEtcd(settings: EtcdConnectionSettings, opts: { node: string; key: string; requestTimeoutMs: number }): EtcdClient {
  const s = withEtcdDefaults(settings);
  const tls = s.tls ? loadEtcdTls(s.tls, opts.node, `${opts.key}.tls`) : undefined;
  const auth = s.auth;
  if (auth) readEtcdPassword(auth.passwordFile, opts.node, `${opts.key}.auth.passwordFile`); // a bad file stops the start, not the first login
  return new EtcdClient({
    endpoints: s.endpoints,
    requestTimeoutMs: opts.requestTimeoutMs,
    tls,
    auth: auth && {
      user: auth.user,
      key: `${opts.key}.auth`,
      passwordFile: auth.passwordFile,
      password: () => readEtcdPassword(auth.passwordFile, opts.node, `${opts.key}.auth.passwordFile`),
    },
  });
}
