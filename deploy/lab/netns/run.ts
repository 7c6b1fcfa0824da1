/**
 * npm run lab -- --topology <vrrp|vrrp-etcd|haproxy-etcd|all> [--scenario NAME[,NAME]|all] [--repeat N]
 *                [--ttl SECONDS] [--handover fast|strict] [--drain-load long|short] [--prefix P] [--keep-dir]
 *
 * Builds the lab once per topology, runs the scenarios N times each, prints every
 * check and a table of figures, writes artifacts/failover-<time>.json, and always
 * tears down (also on SIGINT/SIGTERM and on failure). Exit 1 when a check failed.
 * --handover sets leadership.handover in the etcd topologies' cluster file (default fast).
 * --drain-load short runs drain and rolling with 4-10 s commands instead of 10-30 s (CI does).
 * --keep-dir keeps the run's directory with logs/ (process output, each gateway's ledger
 * and audit files) and results.json.
 */
import { fileURLToPath } from 'node:url';
import { FailoverLab } from './lab.js';
import { ROOT, prerequisites } from './paths.js';
import { HANDOVERS, LAB_DEFAULT_TTL_SECONDS, TOPOLOGIES, type Handover, type Topology } from './topology.js';
import { runScenario, scenariosFor, type ScenarioResult } from './scenarios.js';
import { DRAIN_LOADS, type DrainLoadName } from './workload.js';
import { describe, figures, table, writeArtifacts, writeResults } from './report.js';

export interface RunOptions {
  topology: Topology;
  scenarios: string[] | 'all';
  repeat: number;
  ttlSeconds?: number;
  /** etcd topologies: leadership.handover (default fast). */
  handover?: Handover;
  /** The workload of drain and rolling (default long, the acceptance figures). */
  drainLoad?: DrainLoadName;
  prefix?: string;
  log?: (line: string) => void;
  keepDir?: boolean;
  /** Called once the lab is built (tests use it to interrupt a run). */
  onBuilt?: (lab: FailoverLab) => void;
}

/** Live labs, so a signal handler can tear them down. */
export const liveLabs = new Set<FailoverLab>();

export async function runTopology(o: RunOptions): Promise<ScenarioResult[]> {
  const log = o.log ?? ((l: string) => console.log(l));
  const lab = new FailoverLab({ topology: o.topology, prefix: o.prefix, ttlSeconds: o.ttlSeconds, handover: o.handover, log });
  liveLabs.add(lab);
  const results: ScenarioResult[] = [];
  try {
    await lab.build();
    o.onBuilt?.(lab);
    for (let i = 1; i <= o.repeat; i++) {
      for (const s of scenariosFor(o.topology, o.scenarios)) {
        const t = Date.now();
        const r = await runScenario(lab, s, i, o.keepDir ? lab.logsDir() : undefined, DRAIN_LOADS[o.drainLoad ?? 'long']);
        results.push(r);
        log(`${describe(r)}\n   (${Date.now() - t} ms)`);
        if (r.checks.some((c) => !c.ok && !c.informational)) log(lab.dumpTail());
      }
    }
  } catch (err) {
    log(`lab ${o.topology} failed: ${(err as Error).stack ?? err}\n${lab.dumpTail()}`);
    throw err;
  } finally {
    if (o.keepDir) {
      try {
        writeResults(lab.dir, 'results.json', results);
      } catch (err) {
        log(`could not write ${lab.dir}/results.json: ${(err as Error).message}`);
      }
    }
    const left = await lab.teardown(o.keepDir);
    if (o.keepDir) log(`kept ${lab.dir} (logs/: process output, ledgers, audit files; results.json)`);
    liveLabs.delete(lab);
    if (left.length) log(`LEFT BEHIND: ${left.join(' ')}`);
  }
  return results;
}

function parseArgs(argv: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (v !== undefined) out[k] = v;
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) out[k] = argv[++i]!;
    else out[k] = true;
  }
  return out;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const topo = String(args.topology ?? 'vrrp');
  const topologies = topo === 'all' ? TOPOLOGIES : [topo as Topology];
  if (!topologies.every((t) => TOPOLOGIES.includes(t))) throw new Error(`--topology must be one of ${TOPOLOGIES.join(', ')} or all`);
  const scenarios = args.scenario === undefined || args.scenario === 'all' ? 'all' : String(args.scenario).split(',');
  const repeat = Number(args.repeat ?? 1);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number of at least 1, not ${String(args.repeat)}`);
  const handover = String(args.handover ?? 'fast') as Handover;
  if (!HANDOVERS.includes(handover)) throw new Error(`--handover must be one of ${HANDOVERS.join(', ')} (leadership.handover of the etcd topologies), not ${String(args.handover)}`);
  const drainLoad = String(args['drain-load'] ?? 'long');
  if (!Object.hasOwn(DRAIN_LOADS, drainLoad)) throw new Error(`--drain-load must be one of ${Object.keys(DRAIN_LOADS).join(', ')} (the drain and rolling workload), not ${drainLoad}`);
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: tearing the lab down`);
    void Promise.all([...liveLabs].map((l) => l.teardown(Boolean(args['keep-dir'])))).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const all: ScenarioResult[] = [];
  for (const t of topologies) {
    const missing = prerequisites(t);
    if (missing.length) {
      console.error(`lab ${t}: missing ${missing.join(', ')}`);
      return 2;
    }
    all.push(
      ...(await runTopology({
        topology: t,
        scenarios,
        repeat,
        ttlSeconds: args.ttl ? Number(args.ttl) : LAB_DEFAULT_TTL_SECONDS,
        handover,
        drainLoad: drainLoad as DrainLoadName,
        prefix: typeof args.prefix === 'string' ? args.prefix : undefined,
        keepDir: Boolean(args['keep-dir']),
        onBuilt: () => console.log('LAB-BUILT'),
      })),
    );
  }
  console.log(`\n${table(figures(all))}`);
  const file = writeArtifacts(ROOT, `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, all);
  console.log(`figures: ${file}`);
  return all.some((r) => r.checks.some((c) => !c.ok && !c.informational)) ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(err.stack ?? String(err));
      process.exit(1);
    },
  );
}
