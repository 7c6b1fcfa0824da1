import { callGateway } from '../http/client.js';
import { describeRole, target } from './status.js';
import { TARGET_OPTIONS } from './target.js';
import { checkAdmin, type AdminReply } from './drain.js';
import type { Verb } from './common.js';

export const undrain: Verb = {
  summary: 'take commands again after a drain (rejoin the leadership election)',
  usage: 'execgate undrain [--url URL | --config FILE | --cluster FILE [--node NAME]] [--token-file F | --token T] [--json]',
  options: { ...TARGET_OPTIONS, json: { type: 'boolean' } },
  async run(flags) {
    const { url, token, tokenNote } = target(flags);
    const { status, body } = await callGateway<AdminReply>(url, 'POST', 'admin/undrain', token, tokenNote);
    const reply = checkAdmin(status, body);
    if (flags.json) return void process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
    const what = reply.changed ? 'drain ended, accepting commands again' : 'was not draining';
    process.stdout.write(`${reply.node}: ${what}; ${describeRole({ ...reply, reason: null })}\n`);
  },
};
