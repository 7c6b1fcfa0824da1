import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from './scenarios.js';

export interface Figure {
  topology: string;
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
  checksFailed: number;
}

const median = (xs: number[]) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};

export function figures(results: ScenarioResult[]): Figure[] {
  const groups = new Map<string, ScenarioResult[]>();
  for (const r of results) {
    const k = `${r.topology}\t${r.scenario}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const f = rs.map((r) => r.failoverMs).filter((x): x is number => x !== null);
    return {
      topology: rs[0]!.topology,
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
      checksFailed: rs.reduce((n, r) => n + r.checks.filter((c) => !c.ok && !c.informational).length, 0),
    };
  });
}

export function table(fs: Figure[]): string {
  const head = ['topology', 'scenario', 'n', 'failover median', 'max', 'failed (median/max)', 'split brain median/max', 'overlaps', 'checks'];
  const rows = fs.map((f) => [
    f.topology,
    f.scenario,
    String(f.repeats),
    f.failoverMedianMs === null ? '-' : `${f.failoverMedianMs} ms`,
    f.failoverMaxMs === null ? '-' : `${f.failoverMaxMs} ms${f.noFailover ? ` (${f.noFailover} none)` : ''}`,
    `${f.failedMedian}/${f.failedMax}`,
    `${f.splitBrainMedianMs}/${f.splitBrainMaxMs} ms`,
    String(f.overlapsMax),
    f.checksFailed ? `${f.checksFailed} FAILED` : 'ok',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function describe(r: ScenarioResult): string {
  const bad = r.checks.filter((c) => !c.ok);
  const lines = [
    `${r.topology} ${r.scenario} #${r.repeat}: failover ${r.failoverMs === null ? '-' : `${r.failoverMs} ms`}, failed ${r.failed}/${r.total}, split brain ${r.splitBrainMs} ms, overlaps ${r.overlaps}` +
      (r.notes.length ? `; ${r.notes.join('; ')}` : ''),
  ];
  for (const c of r.checks) lines.push(`   ${c.ok ? 'ok  ' : c.informational ? 'info' : 'FAIL'} ${c.name}: ${c.detail}`);
  if (!bad.length) return lines.join('\n');
  return lines.join('\n');
}

export function writeArtifacts(root: string, name: string, results: ScenarioResult[]): string {
  const dir = join(root, 'artifacts');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ generated: new Date().toISOString(), figures: figures(results), results }, null, 2));
  return file;
}
