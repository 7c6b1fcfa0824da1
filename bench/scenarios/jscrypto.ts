import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { inOrder } from '../context.js';
import type { BenchServer } from '../servers/types.js';
import { fallbackWarning, startJsCryptoExecgate } from '../servers/jsCryptoExecgate.js';
import { GiB, MiB, short, sizeLabel, transfer } from './throughput.js';

/** The second gateway (JavaScript crypto), started on first use; a failed start is not retried. */
let jsGateway: Promise<BenchServer> | null = null;

function jsExecgate(ctx: BenchContext): Promise<BenchServer> {
  jsGateway ??= (async () => {
    const dir = join(ctx.dir, 'execgate-jscrypto');
    ctx.log('jscrypto: starting a second execgate whose ssh2 native crypto binding cannot load');
    const s = await startJsCryptoExecgate(dir, ctx.keys, ctx.user);
    ctx.log(`jscrypto: execgate pid ${s.pid} on 127.0.0.1:${s.port} logged: ${fallbackWarning(dir).slice(0, 160)}...`);
    return s;
  })();
  return jsGateway;
}

/** Stops the second gateway now (it also stops in cleanup; stopping twice is harmless). */
export async function stopJsExecgate(): Promise<void> {
  const s = await jsGateway?.catch(() => null);
  await s?.stop();
}

/**
 * What ssh2's silent JavaScript fallback costs: stdout streams through a gateway whose
 * native binding did not load, against the normal gateway in the same round,
 * interleaved. Both are execgate, so the figures go in the execgate column.
 */
export async function jscrypto(ctx: BenchContext, round: number): Promise<void> {
  const { options, results } = ctx;
  const bytes = options.stdoutBytes;
  let js: BenchServer;
  try {
    js = await jsExecgate(ctx);
  } catch (err) {
    ctx.fail('jscrypto', (err as Error).message);
    return;
  }
  const native = ctx.servers.find((s) => s.name === 'execgate')!;
  const gateways = [
    { server: native, key: 'native', label: 'execgate with native crypto (same round)', cpuLabel: 'native crypto' },
    { server: js, key: 'javascript', label: 'execgate with JavaScript crypto (ssh2 fallback)', cpuLabel: 'JavaScript crypto' },
  ];
  let i = round;
  for (const cipher of options.ciphers) {
    const c = short(cipher);
    const measured = new Map<BenchServer, { mibs: number; cpu: number }>();
    for (const s of inOrder([native, js], i++)) measured.set(s, await stream(ctx, s === js ? 'JavaScript' : 'native', s, cipher, bytes));
    // fixed row order whichever went first: native, JavaScript, their ratio
    for (const g of gateways) {
      const m = measured.get(g.server)!;
      results.add({ id: `jscrypto.${c}.${g.key}`, label: `stdout ${sizeLabel(bytes)}, ${c}, ${g.label}`, unit: 'MiB/s', combine: 'median' }, 'execgate', m.mibs);
      results.add({ id: `jscrypto.${c}.${g.key}.cpu`, label: `server CPU per GiB, stdout, ${c}, ${g.cpuLabel}`, unit: 's/GiB', combine: 'median' }, 'execgate', m.cpu);
    }
    results.add({ id: `jscrypto.${c}.ratio`, label: `JS crypto / native crypto, stdout ${c}`, unit: 'x', combine: 'median' }, 'execgate', measured.get(js)!.mibs / measured.get(native)!.mibs);
  }
}

/** One stdout stream through one of the two gateways: MiB/s and server CPU s/GiB (NaN when it failed). */
async function stream(ctx: BenchContext, which: string, server: BenchServer, cipher: string, bytes: number): Promise<{ mibs: number; cpu: number }> {
  const t = await transfer(server, ctx.keys.clientEd25519, cipher, 'stdout', bytes);
  const c = short(cipher);
  if (!t.ok) {
    ctx.results.note(`jscrypto.${c}.${which.toLowerCase()}`, t.detail);
    ctx.log(`jscrypto ${c} ${which}: FAILED ${t.detail}`);
  }
  const mibs = t.ok ? bytes / MiB / t.seconds : Number.NaN;
  const cpu = t.ok ? t.serverCpuSeconds / (bytes / GiB) : Number.NaN;
  ctx.log(`jscrypto ${c} ${which}: ${mibs.toFixed(0)} MiB/s, server CPU ${cpu.toFixed(2)} s/GiB`);
  return { mibs, cpu };
}
