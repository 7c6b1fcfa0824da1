/** One line of the doctor's table: what was checked, on what, the verdict, and the fix. */
export type Verdict = 'ok' | 'fail' | 'warn' | 'skip';

export interface Row {
  check: string;
  target: string;
  verdict: Verdict;
  detail: string;
  /** What to do about a failing or warning row. */
  fix?: string;
}

export function failed(rows: Row[]): boolean {
  return rows.some((r) => r.verdict === 'fail');
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** A plain-text table; failing rows get their fix on the next line. */
export function formatTable(rows: Row[]): string {
  const head = { check: 'CHECK', target: 'TARGET', verdict: 'RESULT', detail: 'DETAIL' };
  const w = {
    check: Math.max(head.check.length, ...rows.map((r) => r.check.length)),
    target: Math.max(head.target.length, ...rows.map((r) => r.target.length)),
    verdict: 6,
  };
  const line = (c: string, t: string, v: string, d: string) => `${c.padEnd(w.check)}  ${t.padEnd(w.target)}  ${v.padEnd(w.verdict)}  ${d}`.trimEnd();
  const out = [line(head.check, head.target, head.verdict, head.detail)];
  for (const r of rows) {
    out.push(line(r.check, r.target, r.verdict.toUpperCase(), truncate(r.detail.replace(/\s+/g, ' '), 160)));
    if (r.fix && r.verdict !== 'ok') out.push(`${''.padEnd(w.check)}  ${''.padEnd(w.target)}  ${'fix:'.padEnd(w.verdict)}  ${r.fix}`);
  }
  const fails = rows.filter((r) => r.verdict === 'fail').length;
  const warns = rows.filter((r) => r.verdict === 'warn').length;
  out.push('', fails ? `${fails} check(s) failed, ${warns} warning(s).` : `All checks passed${warns ? ` (${warns} warning(s))` : ''}.`);
  return out.join('\n') + '\n';
}
