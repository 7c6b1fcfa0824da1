/** What the lab keeps of a run: the tails printed on a failure, and logs/ for --keep-dir. */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabHosts } from './hosts.js';
import type { Proc } from './processes.js';
import type { Gateway } from './supervisor.js';

/** The last lines of every process's output, and the JVM's stderr. */
export function dumpTail(gateways: Gateway[], haproxy: Proc | null, stderrTail: string[]): string {
  const parts: string[] = [];
  for (const g of gateways) {
    parts.push(`--- ${g.name} execgate (tail)\n${(g.execgate?.out ?? '').split('\n').slice(-25).join('\n')}`);
    parts.push(`--- ${g.name} keepalived (tail)\n${(g.keepalived?.out ?? '').split('\n').slice(-12).join('\n')}`);
    if (g.etcd) parts.push(`--- ${g.name} etcd (tail)\n${g.etcd.out.split('\n').slice(-8).join('\n')}`);
  }
  if (haproxy) parts.push(`--- haproxy (tail)\n${haproxy.out.split('\n').slice(-10).join('\n')}`);
  parts.push(stderrTail.slice(-10).join('\n'));
  return parts.join('\n');
}

/** The kept run's logs/ directory (created). */
export function logsDir(dir: string): string {
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  return logs;
}

/** The output of every process the lab started, for a run kept with --keep-dir. */
export function writeLogs(dir: string, gateways: Gateway[], haproxy: Proc | null): void {
  const logs = logsDir(dir);
  for (const g of gateways) {
    writeFileSync(join(logs, `${g.name}-execgate.log`), g.execgateBefore + (g.execgate?.out ?? ''));
    if (g.keepalived) writeFileSync(join(logs, `${g.name}-keepalived.log`), g.keepalived.out);
    if (g.etcd) writeFileSync(join(logs, `${g.name}-etcd.log`), g.etcd.out);
  }
  if (haproxy) writeFileSync(join(logs, 'haproxy.log'), haproxy.out);
}

/** Each gateway's ledger and audit files, copied out of its tmpfs before teardown unmounts it. */
export function copyHostRecords(hosts: LabHosts, gateways: Gateway[], log: (line: string) => void): void {
  const logs = logsDir(hosts.dir);
  for (const g of gateways) {
    try {
      const names = readdirSync(hosts.hostPath(g.name, '.')).filter((n) => n === 'ledger' || n.startsWith('audit.jsonl'));
      for (const n of names) copyFileSync(hosts.hostPath(g.name, n), join(logs, `${g.name}-${n}`));
    } catch (err) {
      log(`[${g.name}] could not keep its ledger and audit files: ${(err as Error).message}`);
    }
  }
}
