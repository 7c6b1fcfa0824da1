import type { BenchContext } from '../context.js';
import { inOrder, waitQuiet } from '../context.js';
import { connect, exec, close } from '../clients/ssh2client.js';
import type { BenchServer } from '../servers/types.js';

/** One session of `sleep 1; echo ok` on its own connection; true when it worked. */
async function oneSession(server: BenchServer, key: string): Promise<string | null> {
  let client: Awaited<ReturnType<typeof connect>> | null = null;
  try {
    client = await connect(server, key, 60_000);
    const r = await exec(client, 'sleep 1; echo ok', 60_000);
    await close(client);
    if (r.code !== 0 || r.stdout !== 'ok\n') return `exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.slice(0, 200))}`;
    return null;
  } catch (err) {
    client?.destroy();
    return (err as Error).message;
  }
}

/** N connections at once (in-process ssh2 client), each running one session. */
export async function concurrency(ctx: BenchContext, round: number): Promise<void> {
  for (const n of ctx.options.concurrency) {
    for (const s of inOrder(ctx.servers, round + n)) {
      await waitQuiet(s);
      const start = process.hrtime.bigint();
      const errors = await Promise.all(Array.from({ length: n }, () => oneSession(s, ctx.keys.clientEd25519)));
      const wall = Number(process.hrtime.bigint() - start) / 1e9;
      const failed = errors.filter((e) => e !== null);
      for (const e of failed.slice(0, 3)) ctx.results.note(`concurrency.${n}.failures`, `${s.name}: ${e}`);
      const big = n === Math.max(...ctx.options.concurrency);
      ctx.results.add(
        {
          id: `concurrency.${n}.wall`,
          label: `${n} concurrent sessions of "sleep 1; echo ok", wall`,
          unit: 's',
          combine: 'median',
          ...(big ? { target: { kind: 'ratio<=', value: 0.5 } as const } : {}),
        },
        s.name,
        wall,
      );
      ctx.results.add({ id: `concurrency.${n}.failures`, label: `${n} concurrent sessions, failures`, unit: 'count', combine: 'sum', target: { kind: 'execgate==', value: 0 } }, s.name, failed.length);
      ctx.log(`concurrency ${n} ${s.name}: ${wall.toFixed(2)} s, ${failed.length} failed`);
    }
  }
}
