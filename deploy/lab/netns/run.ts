/**
 * npm run lab -- [options] (USAGE below): builds the lab once per topology, runs the
 * scenarios N times each, prints every check and a table of figures, writes
 * artifacts/failover-<time>.json, and always tears down (also on SIGINT/SIGTERM and on
 * failure). The whole command line is checked before anything is built.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FailoverLab } from './lab.js';
import { ROOT, prerequisites } from './paths.js';
import { HANDOVERS, LAB_DEFAULT_TTL_SECONDS, TOPOLOGIES, type Handover, type Topology } from './topology.js';
import { SCENARIOS, runScenario, scenariosFor, type ScenarioResult } from './scenarios.js';
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

export const USAGE = `Usage: npm run lab -- [options]
  --topology T        vrrp, vrrp-etcd, haproxy-etcd or all (default vrrp)
  --scenario A[,B]    scenarios to run, or all (default all): ${SCENARIOS.map((s) => s.name).join(', ')}
  --repeat N          run every scenario N times (default 1)
  --ttl SECONDS       the etcd lease (default ${LAB_DEFAULT_TTL_SECONDS})
  --handover H        leadership.handover of the etcd topologies: ${HANDOVERS.join(' or ')} (default fast)
  --drain-load L      the drain and rolling workload: long (10-30 s commands, the figures) or short (4-10 s, CI)
  --prefix P          namespace name prefix
  --keep-dir          keep the run's directory: logs/ (process output, ledgers, audit files) and results.json
  -h, --help          this text
Exit status: 0 every check passed, 1 a check failed, 2 usage or a missing prerequisite.
`;

/** The command line, checked in full before a lab is built. */
export function parseRunArgs(argv: string[]): (Omit<RunOptions, 'topology'> & { topologies: Topology[] }) | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        topology: { type: 'string', default: 'vrrp' },
        scenario: { type: 'string', default: 'all' },
        repeat: { type: 'string', default: '1' },
        ttl: { type: 'string' },
        handover: { type: 'string', default: 'fast' },
        'drain-load': { type: 'string', default: 'long' },
        prefix: { type: 'string' },
        'keep-dir': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new Error((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), { cause: err });
  }
  if (values.help) return 'help';
  const topologies = values.topology === 'all' ? TOPOLOGIES : [values.topology as Topology];
  if (!topologies.every((t) => TOPOLOGIES.includes(t))) throw new Error(`--topology must be one of ${TOPOLOGIES.join(', ')} or all, not ${values.topology}`);
  const scenarios = values.scenario === 'all' ? 'all' : values.scenario.split(',');
  if (scenarios !== 'all') for (const t of topologies) scenariosFor(t, scenarios); // throws on an unknown name
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number of at least 1, not ${values.repeat}`);
  const ttlSeconds = values.ttl === undefined ? LAB_DEFAULT_TTL_SECONDS : Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new Error(`--ttl must be a whole number of seconds, not ${values.ttl}`);
  const handover = values.handover as Handover;
  if (!HANDOVERS.includes(handover)) throw new Error(`--handover must be one of ${HANDOVERS.join(', ')} (leadership.handover of the etcd topologies), not ${values.handover}`);
  const drainLoad = values['drain-load'];
  if (!Object.hasOwn(DRAIN_LOADS, drainLoad)) throw new Error(`--drain-load must be one of ${Object.keys(DRAIN_LOADS).join(', ')} (the drain and rolling workload), not ${drainLoad}`);
  return { topologies, scenarios, repeat, ttlSeconds, handover, drainLoad: drainLoad as DrainLoadName, prefix: values.prefix, keepDir: values['keep-dir'] };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseRunArgs>;
  try {
    parsed = parseRunArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`lab: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const { topologies, ...options } = parsed;
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: tearing the lab down`);
    void Promise.all([...liveLabs].map((l) => l.teardown(options.keepDir))).finally(() => process.exit(130));
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
    all.push(...(await runTopology({ ...options, topology: t, onBuilt: () => console.log('LAB-BUILT') })));
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
