import type { BenchContext } from '../context.js';
import { inOrder } from '../context.js';
import { runProcess } from '../clients/openssh.js';
import type { BenchServer } from '../servers/types.js';
import { countProblem, metered, recordStream, short, sizeLabel, stdoutLine, type StreamRows, type Transfer } from './throughput.js';

/**
 * `streams` stdout streams at once, each its own OpenSSH connection running
 * `head -c N /dev/zero` into a local `wc -c`, all started together; the time is the
 * wall time until the last one finished, every stream's byte count is checked.
 */
async function parallelStreams(server: BenchServer, key: string, cipher: string, streams: number, bytes: number): Promise<Transfer> {
  const line = stdoutLine(server, key, cipher, bytes);
  const m = await metered(server, async () => {
    const start = process.hrtime.bigint();
    const runs = await Promise.all(Array.from({ length: streams }, () => runProcess('sh', ['-c', line], 10 * 60_000)));
    return { runs, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  });
  const problems = m.result.runs
    .map((r, n) => {
      const p = countProblem(r, bytes);
      return p === null ? null : `stream ${n + 1}: ${p}`;
    })
    .filter((p) => p !== null);
  if (!m.quiet) problems.push('server not quiet afterwards');
  return { ok: problems.length === 0, detail: problems.join('; '), seconds: m.result.seconds, serverCpuSeconds: m.serverCpuSeconds, commandCpuSeconds: Number.NaN };
}

/** Aggregate MiB/s of parallel stdout streams: sshd spreads them over processes and cores. */
export async function parallel(ctx: BenchContext, round: number): Promise<void> {
  const { parallelStreams: n, parallelBytes: bytes } = ctx.options;
  let i = round;
  for (const cipher of ctx.options.ciphers) {
    const what = `${n} parallel stdout streams of ${sizeLabel(bytes)}`;
    const rows: StreamRows = {
      id: `parallel.${short(cipher)}`,
      label: `${what}, ${short(cipher)}, aggregate`,
      target: { kind: 'ratio>=', value: 1.0 },
      cpuId: `cpu.parallel.${short(cipher)}`,
      cpuLabel: `server CPU per GiB, ${n} parallel stdout streams, ${short(cipher)}`,
    };
    for (const s of inOrder(ctx.servers, i++)) recordStream(ctx, s, rows, n * bytes, await parallelStreams(s, ctx.keys.clientEd25519, cipher, n, bytes));
  }
}
