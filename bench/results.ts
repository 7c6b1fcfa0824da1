import { median, sum } from './stats.js';

export type ServerName = 'execgate' | 'sshd';

/** A report-only target: issue 19's, or an earlier issue's that issue 19 did not restate. */
export type Target = { kind: 'ratio<='; value: number } | { kind: 'ratio>='; value: number } | { kind: 'execgate<='; value: number } | { kind: 'execgate=='; value: number };

export interface MetricSpec {
  id: string;
  label: string;
  unit: string;
  /** How per-round values combine: the median, or the sum (failure counts). */
  combine: 'median' | 'sum';
  target?: Target;
}

export interface MetricResult extends MetricSpec {
  rounds: Record<ServerName, number[]>;
  execgate: number;
  sshd: number;
  ratio: number;
  met: boolean | null;
  notes: string[];
}

/** Collects one value per server per round for each metric, in declaration order. */
export class Results {
  private readonly specs = new Map<string, MetricSpec>();
  private readonly values = new Map<string, Record<ServerName, number[]>>();
  private readonly notes = new Map<string, string[]>();

  add(spec: MetricSpec, server: ServerName, value: number): void {
    if (!this.specs.has(spec.id)) {
      this.specs.set(spec.id, spec);
      this.values.set(spec.id, { execgate: [], sshd: [] });
    }
    this.values.get(spec.id)![server].push(value);
  }

  note(id: string, text: string): void {
    const list = this.notes.get(id) ?? [];
    if (!list.includes(text) && list.length < 5) list.push(text);
    this.notes.set(id, list);
  }

  summary(): MetricResult[] {
    return [...this.specs.values()].map((spec) => {
      const rounds = this.values.get(spec.id)!;
      const combine = spec.combine === 'sum' ? sum : median;
      const execgate = combine(rounds.execgate);
      const sshd = combine(rounds.sshd);
      const ratio = sshd === 0 ? (execgate === 0 ? 1 : Number.POSITIVE_INFINITY) : execgate / sshd;
      return { ...spec, rounds, execgate, sshd, ratio, met: judge(spec.target, execgate, ratio), notes: this.notes.get(spec.id) ?? [] };
    });
  }
}

export function judge(target: Target | undefined, execgate: number, ratio: number): boolean | null {
  if (!target || Number.isNaN(execgate)) return null;
  switch (target.kind) {
    case 'ratio<=':
      return ratio <= target.value;
    case 'ratio>=':
      return ratio >= target.value;
    case 'execgate<=':
      return execgate <= target.value;
    case 'execgate==':
      return execgate === target.value;
  }
}

export function describeTarget(t: Target | undefined, unit: string): string {
  if (!t) return '';
  switch (t.kind) {
    case 'ratio<=':
      return `ratio <= ${t.value}`;
    case 'ratio>=':
      return `ratio >= ${t.value}`;
    case 'execgate<=':
      return `execgate <= ${t.value} ${unit}`;
    case 'execgate==':
      return `execgate = ${t.value}`;
  }
}
