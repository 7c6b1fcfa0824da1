import type { FailoverLab } from './lab.js';
import type { Execution } from './workload.js';

export interface LedgerLine {
  execid: string;
  node: string;
  token: string;
  start: number;
  end: number;
}

export interface AuditLine {
  node: string;
  rdJobExecId: string | null;
  token: string | null;
  start: number;
  end: number;
  result: string;
  command: string;
  exitStatus: number;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** Measured, not enforced (VRRP cannot fence: documented best effort). */
  informational?: boolean;
}

export function readLedgers(lab: FailoverLab): LedgerLine[] {
  const out: LedgerLine[] = [];
  for (const g of lab.gateways) {
    for (const line of lab.readHostFile(g.name, 'ledger').split('\n')) {
      const [execid, node, token, start, end] = line.trim().split(' ');
      if (!execid || !end) continue;
      out.push({ execid, node: node!, token: token!, start: Number(start), end: Number(end) });
    }
  }
  return out;
}

export function readAudits(lab: FailoverLab): AuditLine[] {
  const out: AuditLine[] = [];
  for (const g of lab.gateways) {
    for (const line of lab.readHostFile(g.name, 'audit.jsonl').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const r = JSON.parse(line) as { node: string; rdJobExecId: string | null; token: string | null; start: string; end: string; result: string; command: string; exitStatus: number };
        out.push({ ...r, start: Date.parse(r.start), end: Date.parse(r.end) });
      } catch {
        // a torn line is reported by the accounting check
      }
    }
  }
  return out;
}

/** The transport parts of a script step (upload, chmod, cleanup) are not the execution itself. */
const transport = (command: string) => /^(scp -t|chmod \+x|rm -f) /.test(command);
/** Audit records of commands that actually started (not refused). */
export const ran = (a: AuditLine) => (a.result === 'completed' || a.result === 'killed') && !transport(a.command);

export interface CheckInput {
  lab: FailoverLab;
  executions: Execution[];
  /** Only audit/ledger records starting at or after this instant belong to the scenario. */
  since: number;
  /** Windows in which nobody may start anything (etcd quorum lost, after the fence). */
  quietWindows?: Array<{ from: number; to: number; why: string }>;
  /**
   * Which token order must hold between nodes. "fencing" (default): an older token's command
   * ended before a newer token's command started. "admission" (a planned drain with
   * leadership.handover fast): no older token's command started after a newer token's first
   * command started; overlaps are then reported, not failed.
   */
  order?: 'fencing' | 'admission';
}

export interface TokenRun {
  node: string;
  token: bigint;
  start: number;
  end: number;
}

const byToken = (runs: TokenRun[]) => [...runs].sort((x, y) => (x.token < y.token ? -1 : x.token > y.token ? 1 : x.start - y.start));

/** Pairs on two nodes where the older token's command ended after the newer one's started. */
export function fencingOverlaps(runs: TokenRun[]): { pairs: number; maxMs: number; examples: string[] } {
  const sorted = byToken(runs);
  let pairs = 0;
  let maxMs = 0;
  const examples: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j]!;
      if (a.node === b.node || a.token >= b.token || a.end <= b.start) continue;
      pairs++;
      maxMs = Math.max(maxMs, a.end - b.start);
      if (examples.length < 3) examples.push(`${a.node}#${a.token} ended ${a.end - b.start} ms after ${b.node}#${b.token} started`);
    }
  }
  return { pairs, maxMs, examples };
}

/** When each token's first command started on its node. */
function firstStarts(runs: TokenRun[]): Array<{ node: string; token: bigint; start: number }> {
  const first = new Map<string, { node: string; token: bigint; start: number }>();
  for (const r of runs) {
    const k = `${r.node} ${r.token}`;
    const f = first.get(k);
    if (!f || r.start < f.start) first.set(k, { node: r.node, token: r.token, start: r.start });
  }
  return [...first.values()];
}

/** Commands under an older token that STARTED after a newer token's first command started on another node. */
export function admissionViolations(runs: TokenRun[], source: string): string[] {
  const firsts = firstStarts(runs);
  const out: string[] = [];
  for (const a of runs) {
    const newer = firsts.find((f) => f.node !== a.node && f.token > a.token && f.start < a.start);
    if (newer) out.push(`${source}: ${a.node}#${a.token} started ${a.start - newer.start} ms after ${newer.node}#${newer.token} began`);
  }
  return out;
}

/** Older-token commands still running when a newer token's first command started on another node (fast handover). */
export function overlappingOldCommands(runs: TokenRun[]): number[] {
  const firsts = firstStarts(runs);
  const overlapMs: number[] = [];
  for (const a of runs) {
    const starts = firsts.filter((f) => f.node !== a.node && f.token > a.token && f.start < a.end).map((f) => f.start);
    if (starts.length) overlapMs.push(a.end - Math.min(...starts));
  }
  return overlapMs;
}

export function runChecks(input: CheckInput): { checks: Check[]; overlaps: number; overlapMs: number } {
  const { lab, executions, since } = input;
  const mine = new Set(executions.map((e) => e.execid));
  const ledgers = readLedgers(lab).filter((l) => mine.has(l.execid));
  const audits = readAudits(lab).filter((a) => a.rdJobExecId !== null && mine.has(a.rdJobExecId) && a.start >= since - 60_000);
  const checks: Check[] = [];

  // 1. No execution id ran on two nodes.
  const nodesOf = new Map<string, Set<string>>();
  for (const l of ledgers) (nodesOf.get(l.execid) ?? nodesOf.set(l.execid, new Set()).get(l.execid)!).add(l.node);
  for (const a of audits.filter(ran)) (nodesOf.get(a.rdJobExecId!) ?? nodesOf.set(a.rdJobExecId!, new Set()).get(a.rdJobExecId!)!).add(a.node);
  const twice = [...nodesOf].filter(([, s]) => s.size > 1);
  const ledgerDup = new Map<string, number>();
  for (const l of ledgers) ledgerDup.set(l.execid, (ledgerDup.get(l.execid) ?? 0) + 1);
  const dupRuns = [...ledgerDup].filter(([, n]) => n > 1);
  checks.push({
    name: 'no execution ran twice',
    ok: twice.length === 0 && dupRuns.length === 0,
    detail:
      twice.length || dupRuns.length
        ? `${twice
            .map(([id, s]) => `${id} on ${[...s].join('+')}`)
            .concat(dupRuns.map(([id, n]) => `${id} ${n}x`))
            .slice(0, 5)
            .join('; ')}`
        : `${nodesOf.size} executions, each on one node`,
  });

  // 2. Token order between nodes (audit end = process group gone).
  const auditRuns: TokenRun[] = audits.filter((a) => ran(a) && a.token !== null).map((a) => ({ node: a.node, token: BigInt(a.token!), start: a.start, end: a.end }));
  const fence = fencingOverlaps(auditRuns);
  const overlaps = fence.pairs;
  const overlapMs = fence.maxMs;
  if ((input.order ?? 'fencing') === 'fencing') {
    checks.push({
      name: 'older token ended before newer started',
      ok: overlaps === 0,
      informational: !lab.etcd,
      detail: overlaps ? `${overlaps} overlapping pairs (max ${overlapMs} ms): ${fence.examples.join('; ')}` : `${auditRuns.length} runs in token order`,
    });
  } else {
    // Audit and ledger starts are compared each with their own kind: a ledger line is
    // written a few ms after execgate's start, which alone could invert a close pair.
    const ledgerRuns: TokenRun[] = ledgers.filter((l) => /^\d+$/.test(l.token)).map((l) => ({ node: l.node, token: BigInt(l.token), start: l.start, end: l.end }));
    const late = [...admissionViolations(auditRuns, 'audit'), ...admissionViolations(ledgerRuns, 'ledger')];
    checks.push({
      name: 'no older token admitted a command after a newer token started',
      ok: late.length === 0,
      informational: !lab.etcd,
      detail: late.length ? `${late.length} late admissions: ${late.slice(0, 3).join('; ')}` : `${auditRuns.length} audited and ${ledgerRuns.length} ledger runs admitted in token order`,
    });
    const over = overlappingOldCommands(auditRuns).sort((x, y) => x - y);
    checks.push({
      name: 'older-token commands running after a newer token started (fast handover)',
      ok: true,
      informational: true,
      detail: over.length ? `${over.length} commands, overlap median ${over[Math.floor(over.length / 2)]} ms, max ${over.at(-1)} ms (${overlaps} pairs)` : 'none',
    });
  }

  // 3. Nothing lost silently: every execution answered; a success is backed by its node's ledger and audit.
  const pending = executions.filter((e) => e.ok === null);
  const unbacked = executions.filter(
    (e) =>
      e.ok &&
      !(ledgers.some((l) => l.execid === e.execid && l.node === e.node) && audits.some((a) => a.rdJobExecId === e.execid && a.node === e.node && a.result === 'completed' && a.exitStatus === 0)),
  );
  const silentlyDone = executions.filter((e) => e.ok === false && ledgers.some((l) => l.execid === e.execid));
  checks.push({
    name: 'every execution succeeded or the client saw a failure',
    ok: pending.length === 0 && unbacked.length === 0,
    detail:
      pending.length || unbacked.length
        ? `${pending.length} without an answer, ${unbacked.length} successes without ledger+audit: ${[...pending, ...unbacked]
            .slice(0, 3)
            .map((e) => e.execid)
            .join(' ')}`
        : `${executions.filter((e) => e.ok).length} ok, ${executions.filter((e) => e.ok === false).length} failed visibly` +
          (silentlyDone.length ? ` (${silentlyDone.length} of those had completed on a node: a failure reported for work that ran, e.g. a connection reset at the end)` : ''),
  });

  // 4. No process survives its fenced (or former) leader.
  const leftovers: string[] = [];
  for (const g of lab.gateways) {
    if (lab.role(g) === 'leader') continue;
    const pids = lab.commandPids(g);
    if (pids.length) leftovers.push(`${g.name} (${lab.role(g)}): pids ${pids.join(',')}`);
  }
  checks.push({ name: 'no command survives its former leader', ok: leftovers.length === 0, detail: leftovers.length ? leftovers.join('; ') : 'none left on non-leaders' });

  // 5. The audit logs account for every execution that ran (every ledger line has its audit record).
  const deaths = new Map(lab.gateways.map((g) => [g.name, g.roles.filter((r) => r.role === 'dead').map((r) => r.t)]));
  checks.push(auditAccounting(ledgers, audits, executions, deaths));

  for (const w of input.quietWindows ?? []) {
    const during = audits.filter((a) => ran(a) && a.start >= w.from && a.start < w.to);
    checks.push({
      name: `nobody executes: ${w.why}`,
      ok: during.length === 0,
      detail: during.length
        ? `${during.length} started: ${during
            .slice(0, 3)
            .map((a) => `${a.rdJobExecId}@${a.node}`)
            .join(' ')}`
        : `nothing started in ${w.to - w.from} ms`,
    });
  }
  return { checks, overlaps, overlapMs };
}

/**
 * Every ledger line (a command that ran) needs an audit record of its run on that node. A
 * command running when its gateway was killed (SIGKILL, host loss) has no end record from that
 * gateway; the restarted gateway's recovery ends its start record with result "lost", which
 * accounts for it when the client saw a failure. Until that restart, a command that ended within
 * 2 s before its gateway died (`deaths`: when each node's execgate was seen dead) is counted, not
 * failed, likewise.
 */
export function auditAccounting(ledgers: LedgerLine[], audits: AuditLine[], executions: Execution[], deaths: Map<string, number[]>): Check {
  const seenOk = (execid: string) => executions.some((e) => e.execid === execid && e.ok);
  const diedSoonAfter = (node: string, t: number) => (deaths.get(node) ?? []).some((d) => d >= t - 50 && d <= t + 2000);
  const unaudited = ledgers.filter((l) => !audits.some((a) => a.rdJobExecId === l.execid && a.node === l.node && ran(a)));
  const lost = unaudited.filter((l) => !seenOk(l.execid) && audits.some((a) => a.rdJobExecId === l.execid && a.node === l.node && a.result === 'lost'));
  const excused = unaudited.filter((l) => !lost.includes(l) && !seenOk(l.execid) && diedSoonAfter(l.node, l.end));
  const missing = unaudited.filter((l) => !lost.includes(l) && !excused.includes(l));
  const notes = [
    lost.length ? `${lost.length} ended "lost" by the restarted gateway (its predecessor died while they ran; the client saw a failure)` : '',
    excused.length ? `${excused.length} ended as their gateway was killed (no audit line yet; the client saw a failure)` : '',
  ].filter(Boolean);
  const head = missing.length
    ? `${missing.length} ledger lines without audit: ${missing
        .slice(0, 3)
        .map((l) => `${l.execid}@${l.node}`)
        .join(' ')}`
    : `${ledgers.length - lost.length - excused.length} ledger lines audited`;
  return { name: 'audit accounts for every execution', ok: missing.length === 0, detail: head + (notes.length ? `; ${notes.join('; ')}` : '') };
}

/** Time with two or more leaders at once (from execgate's own role log), within [from, to]. */
export function splitBrainMs(lab: FailoverLab, from: number, to: number): number {
  const edges: Array<{ t: number; d: number }> = [];
  for (const g of lab.gateways) {
    let leading: number | null = null;
    const before = g.roles.filter((r) => r.t < from).at(-1);
    if (before?.role === 'leader') leading = from;
    for (const r of g.roles.filter((x) => x.t >= from && x.t <= to)) {
      if (r.role === 'leader' && leading === null) leading = r.t;
      else if (r.role !== 'leader' && leading !== null) {
        edges.push({ t: leading, d: 1 }, { t: r.t, d: -1 });
        leading = null;
      }
    }
    if (leading !== null) edges.push({ t: leading, d: 1 }, { t: to, d: -1 });
  }
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let n = 0;
  let since = 0;
  let total = 0;
  for (const e of edges) {
    if (n >= 2) total += e.t - since;
    n += e.d;
    since = e.t;
  }
  return total;
}
