import type { MetricResult } from './results.js';
import { describeTarget } from './results.js';
import type { Machine } from './machine.js';
import type { BenchOptions } from './options.js';

function fmt(value: number, unit: string): string {
  if (Number.isNaN(value)) return 'n/a';
  if (unit === 'count') return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

const verdict = (met: boolean | null) => (met === null ? '' : met ? 'met' : 'MISSED');

/** One plain-text table: metric, execgate, sshd, ratio execgate/sshd, target, verdict. */
export function table(rows: MetricResult[]): string {
  const header = ['metric', 'unit', 'execgate', 'sshd', 'ratio', 'target', ''];
  const body = rows.map((r) => [
    r.label,
    r.unit,
    fmt(r.execgate, r.unit),
    fmt(r.sshd, r.unit),
    r.unit === 'count' || !Number.isFinite(r.ratio) ? '' : r.ratio.toFixed(2),
    describeTarget(r.target, r.unit),
    verdict(r.met),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function notes(rows: MetricResult[]): string {
  const out: string[] = [];
  for (const r of rows) for (const n of r.notes) out.push(`- ${r.label}: ${n}`);
  return out.length ? `Notes:\n${out.join('\n')}` : '';
}

export function header(machine: Machine, options: BenchOptions, seconds: number): string {
  return [
    `execgate vs OpenSSH sshd — ${options.quick ? 'QUICK smoke run (small sizes; not for comparison)' : 'full run'}, ${options.rounds} round(s), medians over rounds`,
    `machine: ${machine.nproc} cpu(s) ${machine.cpuModel}, ${machine.memoryGiB} GiB, kernel ${machine.kernel}, node ${machine.node}, ${machine.openssh}, ssh2 ${machine.ssh2}${machine.ssh2NativeCrypto ? ' (native crypto)' : ' (pure-JS crypto!)'}`,
    `load average at start ${machine.loadavgAtStart.join(' ')}; took ${seconds.toFixed(0)} s; ratio = execgate / sshd`,
  ].join('\n');
}
