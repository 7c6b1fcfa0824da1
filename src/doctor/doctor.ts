import { existsSync, readFileSync } from 'node:fs';
import type { Cluster } from '../config/cluster.js';
import { clusterProblems } from '../config/clusterLoad.js';
import { renderKeepalived } from '../render/keepalived.js';
import { renderHaproxy } from '../render/haproxy.js';
import { renderSystemd } from '../render/systemd.js';
import { renderProblems } from '../render/validate.js';
import { askPeer, type PeerAnswer } from './peers.js';
import { etcdRows } from './etcdChecks.js';
import { clusterTokenRow } from './clusterToken.js';
import { haproxyCheck, keepalivedCheck, vipHoldCheck } from './tools.js';
import { cryptoRow } from './crypto.js';
import type { Row } from './report.js';
import { KIND_WORDS, minuteIso } from '../ssh/postureReport.js';

export interface DoctorOptions {
  clusterPath: string;
  /** The node the doctor runs on: its installed files are compared with a fresh render. */
  node?: string;
  token?: string;
  timeoutMs?: number;
  /** Clock skew beyond this fails (the Date header alone is good to about a second). */
  maxSkewMs?: number;
}

function renderRow(check: string, target: string, fn: () => string): { row: Row | null; text: string | null } {
  try {
    return { row: null, text: fn() };
  } catch (err) {
    return {
      row: { check, target, verdict: 'fail', detail: (err as Error).message, fix: 'fix the named field in the cluster file' },
      text: null,
    };
  }
}

function toolRow(check: string, target: string, result: { ok: boolean | null; detail: string }, fix: string): Row {
  if (result.ok === null) return { check, target, verdict: 'skip', detail: result.detail };
  return { check, target, verdict: result.ok ? 'ok' : 'fail', detail: result.detail, ...(result.ok ? {} : { fix }) };
}

function driftRow(check: string, path: string, rendered: string, command: string): Row {
  if (!existsSync(path)) return { check, target: path, verdict: 'warn', detail: 'not installed here', fix: `${command} --out ${path}` };
  const installed = readFileSync(path, 'utf8');
  if (installed === rendered) return { check, target: path, verdict: 'ok', detail: 'matches a fresh render' };
  return { check, target: path, verdict: 'fail', detail: 'differs from a fresh render of the cluster file (hand-edited or stale)', fix: `${command} --out ${path}, then reload` };
}

const UPGRADE_LEGACY_CLIENTS = 'upgrade the named clients (Rundeck 5.10+ ships mwiede JSch 0.2.x; the sshj plugin is the default since 4.16), then set auth.allowSshRsaSha1: false on every node';

/**
 * Which legacy algorithms (what auth.allowSshRsaSha1: false stops offering) each node's
 * clients negotiated in the last 24 h, and whether the whole cluster can turn them off:
 * only when every node answers and each one's record covers the full 24 h.
 */
export function postureRows(answers: PeerAnswer[]): Row[] {
  const rows: Row[] = [];
  const check = 'legacy algorithms';
  const unknown: string[] = [];
  const inUse: string[] = [];
  let reporting = 0;
  for (const a of answers) {
    const p = a.status?.algorithms;
    if (!a.status) {
      unknown.push(`${a.node.name} unreachable`);
      continue;
    }
    if (!p) {
      unknown.push(`${a.node.name} does not report them (an older execgate)`);
      rows.push({ check, target: a.node.name, verdict: 'skip', detail: 'not in its /status (an execgate older than algorithm posture)' });
      continue;
    }
    reporting++;
    switch (p.verdict) {
      case 'in-use':
        inUse.push(`${a.node.name} (${[...new Set(p.legacy.map((u) => u.algorithm))].join(', ')})`);
        // One row per algorithm: the table cuts details at 160 characters.
        p.legacy.forEach((u, i) =>
          rows.push({
            check,
            target: a.node.name,
            verdict: 'warn',
            detail: `${u.algorithm} ${KIND_WORDS[u.kind]} in the last 24 h: ${u.handshakes24h} handshake${u.handshakes24h === 1 ? '' : 's'}, last ${minuteIso(Date.parse(u.lastSeen))}, client${u.clients.length === 1 ? '' : 's'} ${u.clients.join(', ') || '-'}`,
            ...(i === p.legacy.length - 1 ? { fix: UPGRADE_LEGACY_CLIENTS } : {}),
          }),
        );
        break;
      case 'unused-short-record':
        unknown.push(`${a.node.name}'s record began only at ${p.since}`);
        rows.push({ check, target: a.node.name, verdict: 'skip', detail: p.summary });
        break;
      default:
        rows.push({ check, target: a.node.name, verdict: 'ok', detail: p.summary });
    }
  }
  if (reporting === 0 || answers.length < 2) return rows;
  if (inUse.length) {
    // The fix is on the node rows above.
    const rest = unknown.length ? ` (not known for ${unknown.join('; ')})` : '';
    rows.push({ check, target: 'cluster', verdict: 'warn', detail: `negotiated in the last 24 h on ${inUse.join('; ')}${rest}: keep auth.allowSshRsaSha1: true` });
  } else if (unknown.length) {
    rows.push({ check, target: 'cluster', verdict: 'skip', detail: `none seen where known, but cannot tell for the whole cluster: ${unknown.join('; ')}` });
  } else if (answers.every((a) => a.status?.algorithms?.verdict === 'not-offered')) {
    rows.push({ check, target: 'cluster', verdict: 'ok', detail: 'not offered on any node (auth.allowSshRsaSha1: false) and none negotiated in the last 24 h' });
  } else {
    rows.push({ check, target: 'cluster', verdict: 'ok', detail: 'no node negotiated a legacy algorithm in the last 24 h: safe to set auth.allowSshRsaSha1: false in the gateway section' });
  }
  return rows;
}

/** Every check, as table rows. Never throws for a problem it can describe. */
export async function runDoctor(cluster: Cluster, opts: DoctorOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const file = opts.clusterPath;
  const problems = clusterProblems(cluster);
  rows.push(
    problems.length
      ? { check: 'cluster file', target: file, verdict: 'fail', detail: problems.join('; '), fix: 'fix the named fields' }
      : { check: 'cluster file', target: file, verdict: 'ok', detail: `${cluster.nodes.length} nodes, leadership ${cluster.leadership.source}` },
  );
  // One node with static leadership is a single gateway: no VIP to move, no keepalived or HAProxy.
  const single = cluster.nodes.length === 1 && cluster.leadership.source === 'static';
  if (single) {
    rows.push({
      check: 'cluster file',
      target: 'nodes',
      verdict: 'warn',
      detail: 'one node with static leadership: a single gateway, no failover (no keepalived, no HAProxy)',
      fix: 'for failover list at least 2 nodes and use etcd or vrrp leadership',
    });
  } else if (cluster.nodes.length < 2) {
    rows.push({ check: 'cluster file', target: 'nodes', verdict: 'fail', detail: renderProblems(cluster, 'haproxy').at(-1) ?? 'fewer than 2 nodes', fix: 'list at least 2 nodes' });
  }
  const here = opts.node ? cluster.nodes.find((n) => n.name === opts.node) : undefined;
  if (opts.node && !here) {
    rows.push({
      check: 'node',
      target: opts.node,
      verdict: 'fail',
      detail: `not in the cluster file (nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`,
      fix: 'pass --node with a name from nodes[]',
    });
  }
  // ssh2 falls back to JavaScript crypto silently when its native binding does not load.
  rows.push(cryptoRow(cluster, here !== undefined));

  // Generated configs, checked by the real tools.
  for (const n of here ? [here] : cluster.nodes) {
    if (single) {
      rows.push({ check: 'keepalived.conf', target: n.name, verdict: 'skip', detail: 'one node with static leadership: no VRRP' });
      continue;
    }
    const { row, text } = renderRow('keepalived.conf', n.name, () => renderKeepalived(cluster, n.name, file));
    if (row) rows.push(row);
    if (text) {
      rows.push(toolRow('keepalived.conf', n.name, keepalivedCheck(text), 'fix the cluster file; check that vrrp.curl exists and is not writable by others, and vrrp.scriptUser exists'));
      if (here) rows.push(driftRow('keepalived.conf', cluster.vrrp.configPath, text, `execgate render keepalived --cluster ${file} --node ${n.name}`));
    }
  }
  if (here && !single && cluster.vip.bind === 'nonlocal' && cluster.leadership.vipHoldSeconds > 0) {
    const hold = vipHoldCheck();
    rows.push({ check: 'VIP drain hold', target: here.name, verdict: hold.ok ? 'ok' : 'warn', detail: hold.detail, ...(hold.ok ? {} : { fix: 'apt-get install python3' }) });
  }
  if (cluster.nodes.length >= 2) {
    const { row, text } = renderRow('haproxy.cfg', 'load balancers', () => renderHaproxy(cluster, file));
    if (row) rows.push(row);
    if (text) rows.push(toolRow('haproxy.cfg', 'load balancers', haproxyCheck(text), 'fix the cluster file (haproxy.*)'));
  }
  if (here) {
    const { row, text } = renderRow('systemd unit', here.name, () => renderSystemd(cluster, here.name, { source: file }));
    if (row) rows.push(row);
    if (text) rows.push(driftRow('systemd unit', `/etc/systemd/system/${cluster.systemd.unit}.service`, text, `execgate render systemd --cluster ${file} --node ${here.name}`));
  }

  // Every peer's own view, asked with the cluster's token (--token, else gateway.http.tokenFile).
  const { token, row: tokenRow } = clusterTokenRow(cluster, opts.token);
  if (tokenRow) rows.push(tokenRow);
  const answers: PeerAnswer[] = await Promise.all(cluster.nodes.map((n) => askPeer(n, opts.timeoutMs ?? 3000, token)));
  for (const a of answers) {
    if (a.error !== undefined) {
      rows.push({
        check: 'peer /status',
        target: a.node.name,
        verdict: 'fail',
        detail: `${a.url}: unreachable (${a.error})`,
        fix: `on ${a.node.name}: systemctl status ${cluster.systemd.unit}; check that ${a.node.address}:${a.node.httpPort} is reachable from here`,
      });
      continue;
    }
    const s = a.status!;
    const nameOk = s.node === a.node.name;
    rows.push({
      check: 'peer /status',
      target: a.node.name,
      verdict: nameOk ? 'ok' : 'fail',
      detail: `role ${s.role}, token ${s.token ?? '-'}, leader ${s.leader ?? '-'}${nameOk ? '' : `; but it calls itself "${s.node}"`}`,
      ...(nameOk ? {} : { fix: `the process at ${a.url} was started with --node ${s.node}; start it with --node ${a.node.name}` }),
    });
  }
  const reachable = answers.filter((a) => a.status);
  rows.push(...postureRows(answers));

  // One host key set for the whole cluster, or strict host key checking breaks after a failover.
  if (reachable.length >= 2) {
    const keyText = (a: PeerAnswer) =>
      (a.status!.hostKeys ?? [])
        .map((k) => `${k.type} ${k.fingerprint}`)
        .sort()
        .join(', ');
    const groups = new Map<string, string[]>();
    for (const a of reachable) groups.set(keyText(a), [...(groups.get(keyText(a)) ?? []), a.node.name]);
    if (groups.size === 1) {
      rows.push({ check: 'host keys', target: 'all reachable', verdict: 'ok', detail: `identical: ${[...groups.keys()][0]}` });
    } else {
      const [reference] = [...groups.entries()].sort((x, y) => y[1].length - x[1].length);
      for (const [keys, nodes] of groups) {
        if (keys === reference![0]) continue;
        rows.push({
          check: 'host keys',
          target: nodes.join(','),
          verdict: 'fail',
          detail: `fingerprints differ from ${reference![1].join(',')}: ${keys} vs ${reference![0]}`,
          fix: `copy the host keys of ${reference![1][0]} to ${nodes.join(', ')} (execgate keygen --cluster makes one set; install.sh --host-keys DIR installs it) and restart; clients with strict host key checking fail after a failover until then`,
        });
      }
    }
  }

  // Clocks: audit lines and lease deadlines compare across nodes.
  for (const a of reachable) {
    if (a.skewMs === undefined) continue;
    const limit = opts.maxSkewMs ?? 2000;
    const bad = Math.abs(a.skewMs) > limit;
    rows.push({
      check: 'clock skew',
      target: a.node.name,
      verdict: bad ? 'fail' : 'ok',
      detail: `${(a.skewMs / 1000).toFixed(1)} s relative to this host (HTTP Date header, ±1 s; rtt ${a.rttMs} ms)`,
      ...(bad ? { fix: `synchronise clocks (systemd-timesyncd or chrony) on ${a.node.name} and here` } : {}),
    });
  }

  // Exactly one leader.
  if (reachable.length) {
    const leaders = reachable.filter((a) => a.status!.role === 'leader').map((a) => `${a.node.name} (token ${a.status!.token ?? '-'})`);
    if (leaders.length === 1) {
      rows.push({ check: 'leaders', target: 'cluster', verdict: 'ok', detail: `one leader: ${leaders[0]}` });
    } else if (leaders.length === 0) {
      rows.push({
        check: 'leaders',
        target: 'cluster',
        verdict: 'fail',
        detail: `no leader among ${reachable.length} reachable node(s)`,
        fix:
          cluster.leadership.source === 'etcd'
            ? "check etcd health below and the gateways' logs (journalctl -u execgate)"
            : 'check keepalived on every node (systemctl status keepalived; journalctl -u keepalived)',
      });
    } else {
      rows.push({
        check: 'leaders',
        target: 'cluster',
        verdict: 'fail',
        detail: `${leaders.length} leaders: ${leaders.join(', ')}`,
        fix:
          cluster.leadership.source === 'static'
            ? 'leadership.source static makes every node a leader: use etcd (or vrrp) in a cluster'
            : 'a partition or a split VRRP domain: check that the nodes reach each other (VRRP adverts, etcd); downstream systems must reject the lower token',
      });
    }
  }

  rows.push(...(await etcdRows(cluster, here, opts.timeoutMs ?? 3000)));
  return rows;
}
