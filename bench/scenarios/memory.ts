import type { ClientChannel } from 'ssh2';
import type { BenchContext } from '../context.js';
import { inOrder, waitQuiet } from '../context.js';
import { connect, close } from '../clients/ssh2client.js';
import type { BenchServer } from '../servers/types.js';
import { processTree, sumMemory } from '../procfs.js';
import { sleep } from '../cleanup.js';
import type { Target } from '../results.js';

const MiB = 1024;

type Client = Awaited<ReturnType<typeof connect>>;

/** RSS and PSS (MiB) of the server's own processes (sshd: listener + every sshd child). */
function serverMemory(server: BenchServer) {
  const m = sumMemory(server.serverPids());
  return { rss: m.rssKiB / MiB, pss: m.pssKiB / MiB, processes: m.processes };
}

function record(ctx: BenchContext, server: BenchServer, key: string, label: string, targets: { rss?: Target; pss?: Target } = {}) {
  const m = serverMemory(server);
  ctx.results.add({ id: `memory.${key}.rss`, label: `RSS, ${label}`, unit: 'MiB', combine: 'median', ...(targets.rss ? { target: targets.rss } : {}) }, server.name, m.rss);
  ctx.results.add({ id: `memory.${key}.pss`, label: `PSS, ${label}`, unit: 'MiB', combine: 'median', ...(targets.pss ? { target: targets.pss } : {}) }, server.name, m.pss);
  ctx.log(`memory ${key} ${server.name}: RSS ${m.rss.toFixed(1)} MiB, PSS ${m.pss.toFixed(1)} MiB over ${m.processes} process(es)`);
  return m;
}

/** PSS growth per connection over the idle figure just before, in KiB. */
function perConnection(ctx: BenchContext, server: BenchServer, key: string, label: string, idlePss: number, nowPss: number, n: number) {
  if (n === 0) return;
  ctx.results.add({ id: `memory.${key}.perconn`, label: `PSS per connection, ${label} (growth over idle)`, unit: 'KiB', combine: 'median' }, server.name, ((nowPss - idlePss) * 1024) / n);
}

/** Opens n authenticated connections, 20 at a time. */
async function openConnections(server: BenchServer, key: string, n: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i += 20) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(20, n - i) }, () => connect(server, key, 60_000)));
    for (const r of batch) if (r.status === 'fulfilled') clients.push(r.value);
  }
  return clients;
}

function startCat(client: Client): Promise<ClientChannel | null> {
  return new Promise((resolve) => {
    client.exec('exec cat', (err, stream) => {
      if (err) return resolve(null);
      stream.on('error', () => {});
      stream.resume();
      resolve(stream);
    });
  });
}

/** How long a fresh server is left alone before its idle figure counts (execgate collects start-up garbage within ~15 s). */
export const IDLE_SETTLE_MS = 20_000;

/**
 * Fresh idle memory, before any load: once right after start-up (execgate's heap then
 * still holds start-up garbage and a grown young generation), and once the servers have
 * been left alone for IDLE_SETTLE_MS: that is the idle figure the target judges and the
 * after-load ratio divides by. Returns the settled RSS (MiB) per server.
 */
export async function idleFresh(ctx: BenchContext): Promise<Map<BenchServer, number>> {
  for (const s of ctx.servers) record(ctx, s, 'fresh', 'idle, just after start-up');
  ctx.log(`memory: leaving both servers alone for ${IDLE_SETTLE_MS / 1000} s before the idle figure`);
  await sleep(IDLE_SETTLE_MS);
  const rss = new Map<BenchServer, number>();
  for (const s of ctx.servers) rss.set(s, record(ctx, s, 'startIdle', `idle, ${IDLE_SETTLE_MS / 1000} s after start-up`, s.name === 'execgate' ? { rss: { kind: 'execgate<=', value: 72 } } : {}).rss);
  return rss;
}

/** "one minute" for 60 s, else "10 s". */
const spell = (ms: number) => (ms === 60_000 ? 'one minute' : `${ms / 1000} s`);

/**
 * Memory that comes back: after the last round, both servers idle for settleMs (60 s;
 * 10 s quick), then RSS and PSS again, and RSS over the idle figure before any load.
 */
export async function memoryAfterLoad(ctx: BenchContext, idleRss: Map<BenchServer, number>): Promise<void> {
  const wait = ctx.options.settleMs;
  ctx.log(`memory: pausing ${wait / 1000} s with both servers idle, to measure the memory ${spell(wait)} after the load ended`);
  for (const s of ctx.servers) await waitQuiet(s);
  await sleep(wait);
  const when = `${spell(wait)} after the load ended`;
  for (const s of ctx.servers) {
    const m = record(ctx, s, 'settled', when);
    const idle = idleRss.get(s) ?? Number.NaN;
    // the target judges execgate's figure; sshd's is computed the same way, for reference
    ctx.results.add(
      { id: 'memory.settled.rssOverFresh', label: `RSS ${spell(wait)} after load / RSS idle before load`, unit: 'x', combine: 'median', target: { kind: 'execgate<=', value: 1.3 } },
      s.name,
      m.rss / idle,
    );
  }
}

export async function memory(ctx: BenchContext, round: number): Promise<void> {
  const n = ctx.options.memoryConnections;
  for (const s of inOrder(ctx.servers, round)) {
    await waitQuiet(s);
    await sleep(500);
    const idle = record(ctx, s, 'idle', 'idle, after load');
    const clients = await openConnections(s, ctx.keys.clientEd25519, n);
    try {
      if (clients.length < n) ctx.results.note(`memory.conn${n}.pss`, `${s.name}: only ${clients.length} of ${n} connections opened`);
      await sleep(1000);
      const conns = record(ctx, s, `conn${n}`, `${n} idle authenticated connections`, { pss: { kind: 'ratio<=', value: 0.25 } });
      perConnection(ctx, s, `conn${n}`, 'idle', idle.pss, conns.pss, clients.length);
      const channels = await Promise.all(clients.map(startCat));
      const started = channels.filter((c) => c !== null).length;
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && processTree(s.pid).filter((p) => p.comm === 'cat').length < started) await sleep(50);
      await sleep(500);
      if (started < n) ctx.results.note(`memory.run${n}.pss`, `${s.name}: only ${started} of ${n} sessions started`);
      const running = record(ctx, s, `run${n}`, `${n} running sessions`);
      perConnection(ctx, s, `run${n}`, 'running session', idle.pss, running.pss, started);
    } finally {
      await Promise.all(clients.map((c) => close(c)));
    }
    await waitQuiet(s);
  }
}
