import { describe, expect, it } from 'vitest';
import { SpawnTurns } from '../../src/exec/spawnTurns.js';

describe('SpawnTurns', () => {
  it('lets one caller through per event-loop turn, in the order they asked, with timers running in between', async () => {
    const turns = new SpawnTurns();
    const order: string[] = [];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end); // a synchronous fork, as the loop sees it
    };
    const started = Array.from({ length: 20 }, (_, i) =>
      turns.next().then(() => {
        order.push(`c${i}@${ticks}`);
        busy(5);
      }),
    );
    await Promise.all(started);
    clearInterval(ticker);
    expect(order.map((o) => o.split('@')[0])).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`));
    const tickSeen = order.map((o) => Number(o.split('@')[1]));
    // A timer ran between consecutive starts: the 5 ms of "fork" never pile up in one turn.
    for (let i = 1; i < tickSeen.length; i++) expect(tickSeen[i]!).toBeGreaterThan(tickSeen[i - 1]!);
  });

  it('an idle caller goes through in the next turn', async () => {
    const turns = new SpawnTurns();
    const t0 = performance.now();
    await turns.next();
    expect(performance.now() - t0).toBeLessThan(50);
  });
});
