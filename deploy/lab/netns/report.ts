import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from './scenarios.js';
import { median } from './workload.js';

export interface Figure {
  topology: string;
  /** leadership.handover (null: vrrp). */
  handover: string | null;
  scenario: string;
  repeats: number;
  failoverMedianMs: number | null;
  failoverMaxMs: number | null;
  /** Repeats without a failover within the wait. */
  noFailover: number;
  failedMedian: number;
  failedMax: number;
  splitBrainMedianMs: number;
  splitBrainMaxMs: number;
  overlapsMax: number;
  /** drain, rolling: drain request to the next node leading. */
  handoffMedianMs: number | null;
  handoffMaxMs: number | null;
  /** Median over the repeats of each run's median wait of a new short command; max of each run's max. */
  waitedMedianMs: number | null;
  waitedMaxMs: number | null;
  checksFailed: number;
}

const present = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null);
const maxOf = (xs: number[]) => (xs.length ? Math.max(...xs) : null);
const ms = (x: number | null) => (x === null ? '-' : `${x} ms`);

export function figures(results: ScenarioResult[]): Figure[] {
  const groups = new Map<string, ScenarioResult[]>();
  for (const r of results) {
    const k = `${r.topology}\t${r.handover}\t${r.scenario}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const f = rs.map((r) => r.failoverMs).filter((x): x is number => x !== null);
    const handoffs = present(rs.map((r) => r.handoffMs));
    return {
      topology: rs[0]!.topology,
      handover: rs[0]!.handover,
      scenario: rs[0]!.scenario,
      repeats: rs.length,
      failoverMedianMs: median(f),
      failoverMaxMs: f.length ? Math.max(...f) : null,
      noFailover: rs.length - f.length,
      failedMedian: median(rs.map((r) => r.failed)) ?? 0,
      failedMax: Math.max(...rs.map((r) => r.failed)),
      splitBrainMedianMs: median(rs.map((r) => r.splitBrainMs)) ?? 0,
      splitBrainMaxMs: Math.max(...rs.map((r) => r.splitBrainMs)),
      overlapsMax: Math.max(...rs.map((r) => r.overlaps)),
      handoffMedianMs: median(handoffs),
      handoffMaxMs: maxOf(handoffs),
      waitedMedianMs: median(present(rs.map((r) => r.waitedMedianMs))),
      waitedMaxMs: maxOf(present(rs.map((r) => r.waitedMaxMs))),
      checksFailed: rs.reduce((n, r) => n + r.checks.filter((c) => !c.ok && !c.informational).length, 0),
    };
  });
}

export function table(fs: Figure[]): string {
  const head = ['topology', 'handover', 'scenario', 'n', 'failover median', 'max', 'failed (median/max)', 'split brain median/max', 'overlaps', 'handoff median/max', 'waited median/max', 'checks'];
  const rows = fs.map((f) => [
    f.topology,
    f.handover ?? '-',
    f.scenario,
    String(f.repeats),
    f.failoverMedianMs === null ? '-' : `${f.failoverMedianMs} ms`,
    f.failoverMaxMs === null ? '-' : `${f.failoverMaxMs} ms${f.noFailover ? ` (${f.noFailover} none)` : ''}`,
    `${f.failedMedian}/${f.failedMax}`,
    `${f.splitBrainMedianMs}/${f.splitBrainMaxMs} ms`,
    String(f.overlapsMax),
    f.handoffMedianMs === null ? '-' : `${f.handoffMedianMs}/${f.handoffMaxMs} ms`,
    f.waitedMedianMs === null ? '-' : `${f.waitedMedianMs}/${f.waitedMaxMs} ms`,
    f.checksFailed ? `${f.checksFailed} FAILED` : 'ok',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function describe(r: ScenarioResult): string {
  const bad = r.checks.filter((c) => !c.ok);
  const lines = [
    `${r.topology}${r.handover ? ` (${r.handover})` : ''} ${r.scenario} #${r.repeat}: failover ${ms(r.failoverMs)}, failed ${r.failed}/${r.total}, split brain ${r.splitBrainMs} ms, overlaps ${r.overlaps}` +
      (r.handoffMs !== null ? `, handoff ${r.handoffMs} ms` : '') +
      `, waited ${r.waitedMedianMs === null ? '-' : `${r.waitedMedianMs}/${r.waitedMaxMs} ms`} (${r.waitedSamples} short commands, baseline ${ms(r.shortBaselineMs)})` +
      (r.notes.length ? `; ${r.notes.join('; ')}` : ''),
  ];
  for (const c of r.checks) lines.push(`   ${c.ok ? 'ok  ' : c.informational ? 'info' : 'FAIL'} ${c.name}: ${c.detail}`);
  if (!bad.length) return lines.join('\n');
  return lines.join('\n');
}

/** Writes {generated, figures, results} to root/artifacts/name. */
export function writeArtifacts(root: string, name: string, results: ScenarioResult[]): string {
  return writeResults(join(root, 'artifacts'), name, results);
}

export function writeResults(dir: string, name: string, results: ScenarioResult[]): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ generated: new Date().toISOString(), figures: figures(results), results }, null, 2));
  return file;
}
