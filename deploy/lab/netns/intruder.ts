/**
 * The intruder scenario's attacks: from the client host, which holds no credential of the
 * cluster, someone tries to take or break the lead through etcd and to plant a dispatch
 * script on a gateway. Each attack is sent raw (the driver's https and http operations,
 * exactly the credentials named) and must be refused the way its credential level
 * predicts; the election key, the leader and its token must be untouched afterwards.
 *
 * Credential levels: (a) no client certificate, (b) a client certificate from another CA,
 * (c) a certificate of the cluster (gw3's, as if stolen) without logging in, (d) that
 * certificate logged in as an etcd user with no role. Each tries four writes: delete the
 * election key, overwrite its value, revoke the leader's lease, write a run-once claim.
 * (e) PUT /peer/dispatch-script without the cluster's token.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Check } from './checks.js';
import { LAB_CLUSTER } from './clusterFile.js';
import { ETCD_PREFIX, INTRUDER_USER, etcdEndpoint, foreignClientCert, labCerts } from './etcdAccess.js';
import type { EtcdKv, FailoverLab } from './lab.js';
import { HTTP_PORT } from './topology.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

interface Credentials {
  what: string;
  ca?: string;
  cert?: string;
  key?: string;
  /** Needs a login first (its token then goes in the Authorization header). */
  login?: { user: string; password: string };
  /** How the refusal must look: a refused TLS handshake, or etcd's own error. */
  expect: 'handshake' | RegExp;
}

export interface Answer {
  status: number;
  body?: string;
  error?: string;
  code?: string | null;
}

const short = (s: string) => s.replace(/\s+/g, ' ').trim().slice(0, 140);

/** A handshake the server broke off (an alert, or the connection closed during it); not "nobody there". */
export function handshakeRefusal(a: Answer): string | null {
  if (a.status !== 0) return null;
  const text = `${a.code ?? ''} ${a.error ?? ''}`;
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|timed out/i.test(text)) return null;
  if (!/alert|certificate|handshake|EPROTO|ERR_SSL|ECONNRESET|socket hang up/i.test(text)) return null;
  const alert = /(?:sslv3|tlsv1\d?) alert ([a-z ]+)/i.exec(text);
  return alert ? `TLS alert "${alert[1]!.trim()}"` : short(a.error ?? a.code ?? '');
}

/** etcd's error message in an answer, or null when it accepted the request. */
export function etcdRefusal(a: Answer): string | null {
  if (a.status === 0) return null;
  try {
    const o = JSON.parse((a.body ?? '').split('\n')[0] ?? '') as { error?: unknown; message?: unknown };
    const m = typeof o.message === 'string' ? o.message : typeof o.error === 'string' ? o.error : null;
    if (m !== null) return `HTTP ${a.status} "${m}"`;
  } catch {
    return `HTTP ${a.status} ${short(a.body ?? '')}`;
  }
  return a.status >= 400 ? `HTTP ${a.status}` : null;
}

/** Sends every attack and checks the aftermath; returns one check per attack and one for the election. */
export async function intruderAttacks(lab: FailoverLab): Promise<{ checks: Check[]; notes: string[] }> {
  const checks: Check[] = [];
  const notes: string[] = [];
  const electionPrefix = `${ETCD_PREFIX}/${LAB_CLUSTER}/leader/`;
  const claimsPrefix = `${ETCD_PREFIX}/${LAB_CLUSTER}/run-once/claims/intruder-`;
  const leader = lab.leader();
  const tokenBefore = leader?.roles.at(-1)?.token ?? null;
  const before = await lab.etcdRange(electionPrefix);
  const held = before.result?.kvs.find((kv) => leader && kv.key.startsWith(`${electionPrefix}${leader.name}-`));
  checks.push({
    name: 'the lab reads the election over mutual TLS as the execgate user',
    ok: before.ok && held !== undefined,
    detail: before.ok
      ? held
        ? `${held.key} lease ${held.lease} (leader ${leader!.name}, token ${tokenBefore})`
        : `no key of the leader ${leader?.name ?? 'none'} among ${before.result?.kvs.length ?? 0}`
      : `${before.error}`,
  });
  if (!held || !leader) return { checks, notes };

  const pki = labCerts(lab.dir);
  const foreign = foreignClientCert(lab.dir);
  const stolen = pki.gateway('gw3');
  const levels: Credentials[] = [
    { what: 'without a client certificate', ca: pki.ca, expect: 'handshake' },
    { what: 'with a client certificate from another CA', ca: pki.ca, cert: foreign.cert, key: foreign.key, expect: 'handshake' },
    // etcd 3.4 answers a read without a token "user name is empty", a write "permission denied".
    { what: "with gw3's client certificate, not logged in", ca: pki.ca, ...stolen, expect: /user name is empty|permission denied/ },
    {
      what: `with gw3's client certificate, logged in as "${INTRUDER_USER}" (no role)`,
      ca: pki.ca,
      ...stolen,
      login: { user: INTRUDER_USER, password: lab.intruderPassword },
      expect: /permission denied/,
    },
  ];
  const claimKey = `${claimsPrefix}${randomBytes(4).toString('hex')}/0/1`;
  const attacks = [
    { name: 'delete the election key', what: `delete the election key ${held.key}`, path: '/v3/kv/deleterange', body: { key: b64(held.key) } },
    { name: 'overwrite the election value', what: `overwrite the value of ${held.key}`, path: '/v3/kv/put', body: { key: b64(held.key), value: b64('intruder') } },
    { name: "revoke the leader's lease", what: `revoke the leader's lease ${held.lease}`, path: '/v3/lease/revoke', body: { ID: held.lease } },
    { name: 'write a run-once claim', what: `write a run-once claim ${claimKey}`, path: '/v3/kv/put', body: { key: b64(claimKey), value: b64(JSON.stringify({ node: INTRUDER_USER })) } },
  ];
  // Another member than the leader's own: every member enforces the same rules.
  const member = lab.gateways.find((g) => g !== leader) ?? lab.gateways[0]!;
  const url = (path: string) => `${etcdEndpoint(member.address)}${path}`;
  const send = (c: Credentials, path: string, body: unknown, token?: string) =>
    lab.request({
      op: 'https',
      url: url(path),
      method: 'POST',
      ca: c.ca,
      cert: c.cert,
      key: c.key,
      body: JSON.stringify(body),
      headers: token ? { authorization: token } : {},
      timeoutMs: 3000,
    }) as Promise<unknown> as Promise<Answer>;

  for (const c of levels) {
    let token: string | undefined;
    if (c.login) {
      const a = await send(c, '/v3/auth/authenticate', { name: c.login.user, password: c.login.password });
      try {
        token = (JSON.parse(a.body ?? '') as { token?: string }).token;
      } catch {
        // no token: the check below says so
      }
      if (!token) {
        checks.push({ name: `intruder logs in as "${c.login.user}"`, ok: false, detail: `no token: ${a.error ?? a.body}` });
        continue;
      }
    }
    for (const at of attacks) {
      const a = await send(c, at.path, at.body, token);
      const how = c.expect === 'handshake' ? handshakeRefusal(a) : etcdRefusal(a);
      const ok = how !== null && (c.expect === 'handshake' || c.expect.test(how));
      const got = a.status === 0 ? `no answer: ${a.code ?? ''} ${short(a.error ?? '')}` : `HTTP ${a.status} ${short(a.body ?? '')}`;
      checks.push({
        name: `intruder ${c.what}: ${at.name}`,
        ok,
        detail: ok
          ? `${at.what} on ${member.name}'s etcd: refused, ${c.expect === 'handshake' ? `the member broke off the TLS handshake (${how})` : `etcd ${how}`}`
          : `${at.what}: NOT refused as expected: ${got}`,
      });
    }
  }

  // (e) A dispatch script planted on every gateway's peer endpoint without the cluster token.
  const path = `/tmp/1-intruder${randomBytes(3).toString('hex')}-gw-dispatch-script.tmp.sh`;
  const statuses: string[] = [];
  let refused = true;
  for (const g of lab.gateways) {
    const a = (await lab.request({
      op: 'http',
      url: `http://${g.address}:${HTTP_PORT}/peer/dispatch-script`,
      method: 'PUT',
      headers: { 'x-execgate-path': encodeURIComponent(path), 'x-execgate-mode': '755', 'x-execgate-uid': '0', 'x-execgate-gid': '0', 'x-execgate-from': 'gw2' },
      body: '#!/bin/sh\necho owned\n',
      timeoutMs: 3000,
    })) as unknown as Answer;
    const planted = existsSync(`/proc/${g.anchor}/root${path}`);
    statuses.push(`${g.name} ${a.status === 0 ? `no answer (${a.error})` : a.status}${planted ? ' AND THE FILE EXISTS' : ''}`);
    if (!(a.status === 401 || a.status === 403) || planted) refused = false;
  }
  checks.push({
    name: 'intruder without the cluster token: PUT /peer/dispatch-script',
    ok: refused,
    detail: `${path} to each gateway's HTTP port: ${statuses.join(', ')}${refused ? '; no file written' : ''}`,
  });

  // Afterwards: the same election key (same revisions, value and lease), the same leader and token, no claim.
  const after = await lab.etcdRange(electionPrefix);
  const now = after.result?.kvs.find((kv) => kv.key === held.key);
  const same = (x: EtcdKv | undefined) => x !== undefined && x.createRevision === held.createRevision && x.modRevision === held.modRevision && x.value === held.value && x.lease === held.lease;
  const claims = await lab.etcdRange(claimsPrefix);
  const leaderNow = lab.leader();
  const tokenNow = leaderNow?.roles.at(-1)?.token ?? null;
  checks.push({
    name: 'after the attacks the leader and its token are unchanged',
    ok: after.ok && same(now) && leaderNow === leader && tokenNow === tokenBefore && claims.ok && claims.result?.kvs.length === 0,
    detail: `${held.key}: ${now ? (same(now) ? `unchanged (mod revision ${now.modRevision}, lease ${now.lease})` : `CHANGED (mod revision ${now.modRevision}, lease ${now.lease})`) : after.ok ? 'GONE' : after.error}; leader ${leaderNow?.name ?? 'none'} token ${tokenNow} (before ${leader.name} ${tokenBefore}); intruder claims: ${claims.ok ? claims.result?.kvs.length : claims.error}`,
  });
  notes.push(`attacks sent to the etcd member on ${member.name} from the client host`);
  return { checks, notes };
}
