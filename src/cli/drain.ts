import { callGateway } from '../http/client.js';
import type { StatusView } from '../http/status.js';
import { errors } from '../errors.js';
import { describeDrain, describeRole, target } from './status.js';
import { TARGET_OPTIONS } from './target.js';
import type { Verb } from './common.js';

/** What POST /admin/drain and /admin/undrain answer. */
export interface AdminReply extends Pick<StatusView, 'node' | 'role' | 'leader' | 'token' | 'drain' | 'running'> {
  action: 'drain' | 'undrain';
  changed: boolean;
  error?: string;
}

export function checkAdmin(status: number, body: AdminReply): AdminReply {
  if (status !== 200) throw errors.adminFailed(body.action ?? 'admin action', status, body.error ?? JSON.stringify(body));
  return body;
}

export const drain: Verb = {
  summary: 'stop taking commands, release leadership when running ones end',
  usage: `execgate drain [--url URL | --config FILE | --cluster FILE [--node NAME]] [--token-file F | --token T] [--wait] [--json]
  refuses new commands (exit 75) at once; releases leadership when running commands end
  or after drainTimeoutSeconds (then kills them first); --wait returns once released;
  the token as for status`,
  options: { ...TARGET_OPTIONS, wait: { type: 'boolean' }, json: { type: 'boolean' } },
  async run(flags) {
    const { url, token, tokenNote } = target(flags);
    const { status, body } = await callGateway<AdminReply>(url, 'POST', 'admin/drain', token, tokenNote);
    const reply = checkAdmin(status, body);
    if (flags.json && !flags.wait) return void process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
    if (!flags.json) {
      process.stdout.write(`${reply.node}: ${reply.changed ? 'drain started' : 'already draining'}; ${describeDrain(reply.drain, reply.running.length)}\n`);
      for (const c of reply.running) process.stdout.write(`  still running: ${c.id.slice(0, 8)}  ${c.user}  ${c.runningSeconds} s  ${c.command ?? ''}\n`);
    }
    if (!flags.wait) return;
    let view: StatusView;
    for (;;) {
      view = (await callGateway<StatusView>(url, 'GET', 'status', token, tokenNote)).body;
      if (view.drain.phase !== 'draining') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (flags.json) return void process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    process.stdout.write(`${view.node}: ${describeDrain(view.drain, view.running.length)}; ${describeRole(view)}\n`);
    if (view.drain.phase !== 'drained') throw errors.drainCancelled(view.node);
  },
};
