import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { sleep } from '../helpers/proc.js';

const MiB = 1024 * 1024;

/** The gateway's young generation (V8 new space) as /metrics reports it, in bytes. */
async function youngGeneration(gw: TestGateway): Promise<number> {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
  const m = /^execgate_nodejs_heap_space_size_total_bytes\{space="new"[^}]*\} (\d+)/m.exec(text);
  if (!m) throw new Error(`no new-space figure in /metrics:\n${text.slice(0, 2000)}`);
  return Number(m[1]);
}

const collections = (gw: TestGateway) =>
  gw
    .output()
    .split('\n')
    .filter((l) => l.includes('"msg":"idle: collected garbage"')).length;

/*
 * V8 collects only when JavaScript allocates: after a load the gateway allocates nothing,
 * and what the load left (a young generation grown to 2 x 16 MiB, garbage holding Buffers)
 * can stay for good (measured after the bench load: 150 MiB RSS a minute later, 32 MiB of
 * young generation; docs/BENCHMARKS.md). V8's own memory reducer sometimes gets there and
 * sometimes does not, so this checks the gateway's own reclaim (src/idleReclaim.ts) runs
 * after a load, in the real process, and that the memory is back when it has.
 */
describe('memory comes back after a load', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ log: { level: 'debug' } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('two full collections once the gateway is quiet again, and the young generation is back to its minimum', async () => {
    // The load: 256 MiB of stdout and a burst of short sessions.
    const stream = await ssh(gw.port, gw.keys.ed25519, 'head -c 268435456 /dev/zero');
    expect(stream.code).toBe(0);
    expect(stream.stdout.length).toBe(268435456);
    const burst = await Promise.all(Array.from({ length: 20 }, () => ssh(gw.port, gw.keys.ed25519, 'echo ok')));
    expect(burst.every((r) => r.code === 0)).toBe(true);
    const before = collections(gw);
    const loaded = await youngGeneration(gw);

    // Collections run on quiet 7 s intervals: two of them and a margin, polling gently
    // (a scrape is work too).
    let now = loaded;
    for (let waited = 0; waited < 40_000 && (collections(gw) < before + 2 || now > 4 * MiB); waited += 2000) {
      await sleep(2000);
      now = await youngGeneration(gw);
    }
    expect(collections(gw) - before, 'full collections after the load').toBeGreaterThanOrEqual(2);
    expect(now, `young generation ${now / MiB} MiB after the load (${loaded / MiB} MiB at its end)`).toBeLessThanOrEqual(4 * MiB);
    // and the gateway still works
    expect((await ssh(gw.port, gw.keys.ed25519, 'echo still')).stdout.toString()).toBe('still\n');
  }, 90_000);
});
