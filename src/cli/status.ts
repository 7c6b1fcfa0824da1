import { callGateway, DEFAULT_URL } from '../http/client.js';
import type { StatusView } from '../http/status.js';
import { stringFlag, type Flags, type Verb } from './common.js';
import { hostname } from 'node:os';
import { loadClusterFile } from '../config/clusterLoad.js';
import { ExecgateError } from '../errors.js';

export function target(flags: Flags): { url: string; token: string | undefined } {
  const token = stringFlag(flags, 'token') ?? process.env.EXECGATE_HTTP_TOKEN;
  const url = stringFlag(flags, 'url');
  const clusterPath = stringFlag(flags, 'cluster');
  if (url === undefined && clusterPath !== undefined) {
    // On a cluster node the HTTP surface listens on the node's own address.
    const cluster = loadClusterFile(clusterPath);
    const name = stringFlag(flags, 'node') ?? hostname();
    const node = cluster.nodes.find((n) => n.name === name);
    if (!node) throw new ExecgateError('EG_CLUSTER_NODE', `node "${name}" is not in ${clusterPath} (give --node NAME); its nodes are: ${cluster.nodes.map((n) => n.name).join(', ')}`);
    return { url: `http://${node.address}:${node.httpPort}`, token: token ?? cluster.gateway.http.token };
  }
  return { url: url ?? DEFAULT_URL, token };
}

const clock = (iso: string | null) => (iso === null ? '-' : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z'));

export function describeRole(v: Pick<StatusView, 'node' | 'role' | 'token' | 'leader' | 'reason'>): string {
  const token = v.token !== null ? ` (token ${v.token})` : '';
  if (v.role === 'leader') return `${v.node} is the leader${token}`;
  const leader = v.leader && v.leader !== v.node ? `; leader is ${v.leader}${token}` : '; no other leader known';
  return `${v.node} is ${v.role}${leader}${v.reason ? ` (${v.reason})` : ''}`;
}

export function describeDrain(d: StatusView['drain'], running: number): string {
  switch (d.phase) {
    case 'active':
      return 'not draining';
    case 'draining':
      return `draining since ${clock(d.since)}: refusing new commands; ${running} still running, killed at ${clock(d.deadline)} if not done${d.error ? `; ${d.error}` : ''}`;
    case 'handover':
      return `drained since ${clock(d.since)}: handing over (new traffic goes to the next node; ${running} still running here)`;
    case 'drained':
      return `drained since ${clock(d.since)}: leadership released; "execgate undrain" to rejoin`;
  }
}

export function formatStatus(v: StatusView): string {
  const lines = [
    `${describeRole(v)}, since ${clock(v.since)}`,
    `health:   ${v.health.ok ? 'ok' : `UNHEALTHY: ${v.health.reason}`}`,
    `drain:    ${describeDrain(v.drain, v.running.length)}`,
    `ssh:      ${v.listen.join(', ')} (leadership: ${v.leadership}; execgate ${v.version}, up ${v.uptimeSeconds} s)`,
    `running:  ${v.running.length}`,
  ];
  for (const c of v.running) {
    lines.push(`  ${c.id.slice(0, 8)}  ${c.user}  ${c.client}  ${c.runningSeconds} s  pid ${c.pid ?? '-'}  ${c.command ?? '(command hidden)'}`);
  }
  const failed = v.recent.filter((c) => c.result !== 'completed' || c.exitStatus !== 0);
  lines.push(`recent:   ${v.recent.length} finished, ${failed.length} failed or refused`);
  for (const c of failed.slice(0, 5)) {
    lines.push(`  ${c.id.slice(0, 8)}  ${clock(c.ended)}  ${c.result} exit ${c.exitStatus}  ${c.command ?? '(command hidden)'}`);
  }
  return lines.join('\n') + '\n';
}

export const status: Verb = {
  summary: "show a gateway's role, health, drain state and commands",
  usage: 'execgate status [--url URL | --cluster FILE [--node NAME]] [--token T] [--json]   default URL http://127.0.0.1:9422',
  async run(flags) {
    const { url, token } = target(flags);
    const { body } = await callGateway<StatusView>(url, 'GET', 'status', token);
    process.stdout.write(flags.json ? `${JSON.stringify(body, null, 2)}\n` : formatStatus(body));
  },
};
