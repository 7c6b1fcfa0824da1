import type { BenchContext } from '../context.js';
import { inOrder, Budget } from '../context.js';
import { opensshExec } from '../clients/openssh.js';
import { ssh2Exec } from '../clients/ssh2client.js';
import type { BenchServer } from '../servers/types.js';
import { percentile } from '../stats.js';

type Runner = (server: BenchServer) => Promise<{ ms: number; ok: boolean; detail: string }>;

/** connect + auth + exec `true` + close, N sequential, alternating servers each iteration. */
export async function latency(ctx: BenchContext, round: number): Promise<void> {
  const { keys, options, results } = ctx;
  const clients: Array<{ id: string; label: string; run: Runner }> = [
    { id: 'openssh', label: 'OpenSSH client', run: (s) => opensshExec(s, keys.clientEd25519, 'true') },
    // sshd and the OpenSSH client pick sntrup761x25519 (post-quantum, slow here); ssh2 has no such kex.
    // This row compares both servers with the same kex.
    { id: 'openssh-x25519', label: 'OpenSSH client, kex curve25519', run: (s) => opensshExec(s, keys.clientEd25519, 'true', ['-o', 'KexAlgorithms=curve25519-sha256']) },
    { id: 'ssh2', label: 'in-process ssh2 client', run: (s) => ssh2Exec(s, keys.clientEd25519, 'true') },
  ];
  for (const client of clients) {
    const samples: Record<string, number[]> = { execgate: [], sshd: [] };
    const failures: Record<string, number> = { execgate: 0, sshd: 0 };
    if (round === 0) for (const s of ctx.servers) for (let w = 0; w < 3; w++) await client.run(s); // warm-up
    const budget = new Budget(`latency ${client.id}`, 5 * 60_000);
    for (let i = 0; i < options.latencyCount && !budget.exceeded; i++) {
      for (const s of inOrder(ctx.servers, i)) {
        const r = await client.run(s);
        if (r.ok) samples[s.name]!.push(r.ms);
        else {
          failures[s.name]!++;
          results.note(`latency.${client.id}.failures`, `${s.name}: ${r.detail}`);
        }
      }
    }
    if (budget.exceeded) results.note(`latency.${client.id}.p50`, 'stopped early: time budget exceeded');
    for (const s of ctx.servers) {
      const v = samples[s.name]!;
      const target50 = client.id === 'openssh' ? ({ kind: 'ratio<=', value: 0.3 } as const) : client.id === 'ssh2' ? ({ kind: 'execgate<=', value: 25 } as const) : undefined;
      results.add(
        { id: `latency.${client.id}.p50`, label: `connect+exec true, ${client.label}, p50`, unit: 'ms', combine: 'median', ...(target50 ? { target: target50 } : {}) },
        s.name,
        percentile(v, 50),
      );
      results.add({ id: `latency.${client.id}.p95`, label: `connect+exec true, ${client.label}, p95`, unit: 'ms', combine: 'median' }, s.name, percentile(v, 95));
      results.add(
        { id: `latency.${client.id}.failures`, label: `connect+exec true, ${client.label}, failures`, unit: 'count', combine: 'sum', target: { kind: 'execgate==', value: 0 } },
        s.name,
        failures[s.name]!,
      );
    }
    ctx.log(`latency ${client.id}: execgate p50 ${percentile(samples.execgate!, 50).toFixed(1)} ms, sshd p50 ${percentile(samples.sshd!, 50).toFixed(1)} ms`);
  }
}
