/**
 * `execgate etcd-setup`: the plan of setupPlan.ts as an etcdctl script for an operator to
 * read and run, or applied at once through etcd's JSON API as root over one node's TLS
 * files. Both are idempotent: what exists is kept, an existing user's password is set
 * from its file again (that is how a password is rotated), and authentication is turned
 * on last.
 */
import { expandNodePath } from '../config/etcdConnection.js';
import type { Cluster } from '../config/cluster.js';
import { errors } from '../errors.js';
import { EtcdClient, EtcdResponseError } from './client.js';
import { connectEtcd } from './connect.js';
import { readEtcdPassword } from './password.js';
import { etcdSetupPlan, ROOT, type EtcdSetupPlan } from './setupPlan.js';
import { loadEtcdTls } from './tls.js';
import { b64, prefixRangeEnd } from './wire.js';

export { etcdSetupPlan, type EtcdSetupPlan } from './setupPlan.js';

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The plan as a POSIX shell script of etcdctl (API v3) commands; it never prints a password. */
export function etcdctlScript(cluster: Cluster, opts: { node?: string; rootPasswordFile?: string } = {}): string {
  const plan = etcdSetupPlan(cluster);
  const node = opts.node ?? cluster.nodes[0]!.name;
  const tls = plan.connection.tls;
  const lines = [
    '#!/bin/sh',
    `# etcd for execgate cluster "${plan.cluster}": authentication on, and the gateways' user "${plan.user}"`,
    `# limited to ${plan.prefixes.join(' and ')}. Safe to run again: an existing user gets its password`,
    '# from the file again (the rotation), what exists is kept. Passwords go from their files to etcdctl on stdin, never on a command line.',
    'set -eu',
    'export ETCDCTL_API=3',
    `export ETCDCTL_ENDPOINTS=${q(plan.connection.endpoints.join(','))}`,
    ...(tls
      ? [`export ETCDCTL_CACERT=${q(expandNodePath(tls.caFile, node))}`, `export ETCDCTL_CERT=${q(expandNodePath(tls.certFile, node))}`, `export ETCDCTL_KEY=${q(expandNodePath(tls.keyFile, node))}`]
      : []),
    `ROOT_PASSWORD_FILE=\${ROOT_PASSWORD_FILE:-${q(opts.rootPasswordFile ?? 'etcd-root-password')}}`,
    `PASSWORD_FILE=${q(expandNodePath(plan.passwordFile, node))}`,
    '',
    '# A second run finds authentication on: act as root.',
    `if ETCDCTL_USER="${ROOT}:$(cat "$ROOT_PASSWORD_FILE")" etcdctl user get ${ROOT} >/dev/null 2>&1; then export ETCDCTL_USER="${ROOT}:$(cat "$ROOT_PASSWORD_FILE")"; fi`,
    '',
    '# root: etcd refuses to enable authentication without it',
    `etcdctl user get ${ROOT} >/dev/null 2>&1 || cat "$ROOT_PASSWORD_FILE" | etcdctl user add ${ROOT} --interactive=false`,
    `etcdctl role get ${ROOT} >/dev/null 2>&1 || etcdctl role add ${ROOT}`,
    `etcdctl user grant-role ${ROOT} ${ROOT}`,
    '',
    `# role ${plan.role}: read and write under the cluster's prefix only`,
    `etcdctl role get ${plan.role} >/dev/null 2>&1 || etcdctl role add ${plan.role}`,
    ...plan.prefixes.map((p) => `etcdctl role grant-permission ${plan.role} --prefix=true readwrite ${q(p)}`),
    '',
    `# user ${plan.user}: the gateways log in as it`,
    `if etcdctl user get ${q(plan.user)} >/dev/null 2>&1; then`,
    `  cat "$PASSWORD_FILE" | etcdctl user passwd ${q(plan.user)} --interactive=false`,
    'else',
    `  cat "$PASSWORD_FILE" | etcdctl user add ${q(plan.user)} --interactive=false`,
    'fi',
    `etcdctl user grant-role ${q(plan.user)} ${plan.role}`,
    '',
    'etcdctl auth enable',
    '',
  ];
  return lines.join('\n');
}

export interface ApplyOptions {
  /** Whose TLS and password files to use (`%n`). */
  node: string;
  rootPassword: string;
  log: (line: string) => void;
  requestTimeoutMs?: number;
}

const ALREADY = /already exists|already granted/i;
const AUTH_OFF = /authentication is not enabled/i;

/** Applies the plan of a cluster file through etcd's JSON API (as root once authentication is on). */
export async function applyEtcdSetup(cluster: Cluster, opts: ApplyOptions): Promise<void> {
  await applyEtcdSetupPlan(etcdSetupPlan(cluster), opts);
}

export async function applyEtcdSetupPlan(plan: EtcdSetupPlan, opts: ApplyOptions): Promise<void> {
  const { node, log } = opts;
  const timeout = opts.requestTimeoutMs ?? 10_000;
  const tls = plan.connection.tls ? loadEtcdTls(plan.connection.tls, node, 'leadership.etcd.tls') : undefined;
  const password = readEtcdPassword(plan.passwordFile, node, 'leadership.etcd.auth.passwordFile');
  const anonymous = new EtcdClient({ endpoints: plan.connection.endpoints, requestTimeoutMs: timeout, tls });
  let authOn: boolean;
  try {
    await anonymous.call('/v3/auth/authenticate', { name: ROOT, password: opts.rootPassword });
    authOn = true;
  } catch (err) {
    if (!(err instanceof EtcdResponseError)) throw err;
    if (AUTH_OFF.test(err.message)) authOn = false;
    else throw errors.etcdSetupRootLogin(err.message);
  } finally {
    anonymous.close();
  }
  log(authOn ? `authentication is on: logged in as ${ROOT}` : 'authentication is off: it is turned on last');
  const root = new EtcdClient({
    endpoints: plan.connection.endpoints,
    requestTimeoutMs: timeout,
    tls,
    auth: authOn ? { user: ROOT, password: () => opts.rootPassword, key: '--root-password-file', passwordFile: '(the root password file)' } : undefined,
  });
  const step = async (what: string, path: string, body: unknown, tolerate = ALREADY) => {
    try {
      await root.call(path, body);
      log(`${what}: done`);
    } catch (err) {
      if (err instanceof EtcdResponseError && tolerate.test(err.message)) return log(`${what}: already so`);
      throw err;
    }
  };
  try {
    await step(`user ${ROOT}`, '/v3/auth/user/add', { name: ROOT, password: opts.rootPassword });
    await step(`role ${ROOT}`, '/v3/auth/role/add', { name: ROOT });
    await step(`user ${ROOT} has role ${ROOT}`, '/v3/auth/user/grant', { user: ROOT, role: ROOT });
    await step(`role ${plan.role}`, '/v3/auth/role/add', { name: plan.role });
    const wanted = new Set(plan.prefixes);
    const current = await root.call<{ perm?: Array<{ key?: string; range_end?: string }> }>('/v3/auth/role/get', { role: plan.role });
    for (const perm of current.perm ?? []) {
      const key = Buffer.from(perm.key ?? '', 'base64').toString('utf8');
      if (wanted.has(key) && perm.range_end === prefixRangeEnd(key)) continue;
      // Least privilege: a permission the plan does not name (an old prefix) goes.
      await step(`role ${plan.role}: revoke ${key}${perm.range_end ? ' (range)' : ''}`, '/v3/auth/role/revoke', { role: plan.role, key: perm.key ?? '', range_end: perm.range_end ?? '' });
    }
    for (const p of plan.prefixes) {
      await step(`role ${plan.role}: readwrite ${p}*`, '/v3/auth/role/grant', { name: plan.role, perm: { permType: 'READWRITE', key: b64(p), range_end: prefixRangeEnd(p) } });
    }
    let created = true;
    try {
      await root.call('/v3/auth/user/add', { name: plan.user, password });
      log(`user ${plan.user}: done`);
    } catch (err) {
      if (!(err instanceof EtcdResponseError && ALREADY.test(err.message))) throw err;
      created = false;
    }
    if (!created) await step(`user ${plan.user}: password set from ${expandNodePath(plan.passwordFile, node)}`, '/v3/auth/user/changepw', { name: plan.user, password });
    await step(`user ${plan.user} has role ${plan.role}`, '/v3/auth/user/grant', { user: plan.user, role: plan.role });
    if (!authOn) await step('authentication', '/v3/auth/enable', {});
  } finally {
    root.close();
  }
  await verify(plan, node, timeout, log);
}

/** The user can read its prefix and is refused a write outside it. */
async function verify(plan: EtcdSetupPlan, node: string, timeout: number, log: (line: string) => void): Promise<void> {
  const client = connectEtcd(plan.connection, { node, key: 'leadership.etcd', requestTimeoutMs: timeout });
  try {
    for (const p of plan.prefixes) await client.rangePrefix(p);
    log(`check: user ${plan.user} reads ${plan.prefixes.join(' and ')}`);
    const outside = `/execgate-setup-check/${plan.cluster}/outside`;
    try {
      await client.call('/v3/kv/put', { key: b64(outside), value: b64('x') });
    } catch (err) {
      if (err instanceof EtcdResponseError && err.grpcCode === 7) {
        log(`check: user ${plan.user} is refused a put outside them (${outside}): permission denied`);
        return;
      }
      throw err;
    }
    await client.call('/v3/kv/deleterange', { key: b64(outside) }).catch(() => undefined);
    throw errors.etcdSetupNotLimited(plan.user, outside);
  } finally {
    client.close();
  }
}
