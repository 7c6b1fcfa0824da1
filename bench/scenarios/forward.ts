import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { inOrder } from '../context.js';
import { opensshExec } from '../clients/openssh.js';
import type { BenchServer } from '../servers/types.js';
import { startForwardingPair, type ForwardingPair } from '../servers/forwardingExecgate.js';
import { percentile } from '../stats.js';
import { GiB, MiB, short, sizeLabel, transfer } from './throughput.js';

/** The stream the issue asks for, whatever --quick says: long enough to reach steady state. */
const STDOUT_BYTES = 256 * MiB;

/** The two extra gateways, started on first use; a failed start is not retried. */
let pair: Promise<ForwardingPair> | null = null;

function forwardingPair(ctx: BenchContext): Promise<ForwardingPair> {
  pair ??= (async () => {
    ctx.log('forward: starting a target execgate and an execgate that forwards every connection to it (PROXY v2)');
    const p = await startForwardingPair(join(ctx.dir, 'execgate-forward'), ctx.keys, ctx.user);
    ctx.log(`forward: target pid ${p.target.pid} on 127.0.0.1:${p.target.port}; forwarder pid ${p.forwarder.pid} on 127.0.0.1:${p.forwarder.port}`);
    return p;
  })();
  return pair;
}

/** Stops both now (they also stop in cleanup; stopping twice is harmless). */
export async function stopForwardingPair(): Promise<void> {
  const p = await pair?.catch(() => null);
  await p?.forwarder.stop();
  await p?.target.stop();
}

/**
 * What forwarding costs a client while a node drains: connect+exec and a stdout stream
 * straight to a gateway against the same through a second gateway that relays the TCP
 * connection (PROXY v2 header first), interleaved. All figures are execgate's.
 */
export async function forward(ctx: BenchContext, round: number): Promise<void> {
  const { options, results, keys } = ctx;
  let p: ForwardingPair;
  try {
    p = await forwardingPair(ctx);
  } catch (err) {
    ctx.fail('forward', (err as Error).message);
    return;
  }
  const ways = [
    { server: p.target, key: 'direct', label: 'direct' },
    { server: p.forwarder, key: 'forwarded', label: 'through a forwarding gateway' },
  ];
  const label = (s: BenchServer) => ways.find((w) => w.server === s)!.key;

  const samples = new Map<BenchServer, number[]>([
    [p.target, []],
    [p.forwarder, []],
  ]);
  if (round === 0) for (const w of ways) for (let i = 0; i < 3; i++) await opensshExec(w.server, keys.clientEd25519, 'true');
  for (let i = 0; i < options.latencyCount; i++) {
    for (const s of inOrder([p.target, p.forwarder], i)) {
      const r = await opensshExec(s, keys.clientEd25519, 'true');
      if (r.ok) samples.get(s)!.push(r.ms);
      else results.note(`forward.latency.${label(s)}`, r.detail);
    }
  }
  const p50 = (s: BenchServer) => percentile(samples.get(s)!, 50);
  for (const w of ways) {
    results.add({ id: `forward.latency.${w.key}`, label: `connect+exec true, OpenSSH client, ${w.label}, p50`, unit: 'ms', combine: 'median' }, 'execgate', p50(w.server));
  }
  results.add({ id: 'forward.latency.added', label: 'connect+exec true, added by forwarding, p50', unit: 'ms', combine: 'median' }, 'execgate', p50(p.forwarder) - p50(p.target));
  ctx.log(`forward latency p50: direct ${p50(p.target).toFixed(1)} ms, forwarded ${p50(p.forwarder).toFixed(1)} ms`);

  const cipher = options.ciphers[0]!;
  const c = short(cipher);
  const measured = new Map<BenchServer, { mibs: number; cpu: number }>();
  for (const s of inOrder([p.target, p.forwarder], round)) {
    const t = await transfer(s, keys.clientEd25519, cipher, 'stdout', STDOUT_BYTES);
    if (!t.ok) {
      results.note(`forward.stdout.${label(s)}`, t.detail);
      ctx.log(`forward stdout ${label(s)}: FAILED ${t.detail}`);
    }
    const m = { mibs: t.ok ? STDOUT_BYTES / MiB / t.seconds : Number.NaN, cpu: t.ok ? t.serverCpuSeconds / (STDOUT_BYTES / GiB) : Number.NaN };
    measured.set(s, m);
    ctx.log(`forward stdout ${label(s)}: ${m.mibs.toFixed(0)} MiB/s, CPU of the gateway connected to ${m.cpu.toFixed(2)} s/GiB`);
  }
  for (const w of ways) {
    results.add({ id: `forward.stdout.${w.key}`, label: `stdout ${sizeLabel(STDOUT_BYTES)}, ${c}, ${w.label}`, unit: 'MiB/s', combine: 'median' }, 'execgate', measured.get(w.server)!.mibs);
  }
  results.add({ id: 'forward.stdout.ratio', label: `forwarded / direct, stdout ${c}`, unit: 'x', combine: 'median' }, 'execgate', measured.get(p.forwarder)!.mibs / measured.get(p.target)!.mibs);
  results.add(
    { id: 'forward.stdout.cpu.target', label: `server CPU per GiB, stdout ${c}, the gateway running the command (direct)`, unit: 's/GiB', combine: 'median' },
    'execgate',
    measured.get(p.target)!.cpu,
  );
  results.add({ id: 'forward.stdout.cpu.forwarder', label: `forwarder CPU per GiB, stdout ${c} (the relay alone)`, unit: 's/GiB', combine: 'median' }, 'execgate', measured.get(p.forwarder)!.cpu);
}
