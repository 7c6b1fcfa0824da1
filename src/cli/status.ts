import { callGateway } from '../http/client.js';
import type { StatusView } from '../http/status.js';
import type { Verb } from './common.js';
import { target, TARGET_OPTIONS } from './target.js';

export { target };

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
  // Absent from a gateway older than algorithm posture.
  if (v.algorithms) lines.push(`algorithms: ${v.algorithms.summary}`);
  return lines.join('\n') + '\n';
}

/** How the verbs find the token, for their usage lines. */
export const TOKEN_USAGE =
  'the token comes from --token, --token-file, EXECGATE_HTTP_TOKEN, the --config/--cluster file, or the state directory of "execgate serve" (--state-dir, EXECGATE_STATE_DIR, ./.execgate)';

export const status: Verb = {
  summary: "show a gateway's role, health, drain state and commands",
  usage: `execgate status [--url URL | --config FILE | --cluster FILE [--node NAME]] [--token-file F | --token T] [--json]
  default URL http://127.0.0.1:9422; ${TOKEN_USAGE}`,
  options: { ...TARGET_OPTIONS, json: { type: 'boolean' } },
  async run(flags) {
    const { url, token, tokenNote } = target(flags);
    const { body } = await callGateway<StatusView>(url, 'GET', 'status', token, tokenNote);
    process.stdout.write(flags.json ? `${JSON.stringify(body, null, 2)}\n` : formatStatus(body));
    if (body.commandLines === 'hidden') process.stderr.write(`execgate: command lines hidden: they need the node's bearer token (${tokenNote})\n`);
  },
};
