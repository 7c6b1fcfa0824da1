import { describe, it, expect } from 'vitest';
import { runInNewContext } from 'node:vm';
import { getHeapSpaceStatistics } from 'node:v8';
import { IdleReclaim, fullGc } from '../../src/idleReclaim.js';

/** An IdleReclaim driven by hand: each tick() sees the next utilization in `loads`. */
function driven(loads: number[]) {
  let i = 0;
  const collected: number[] = [];
  const reclaim = new IdleReclaim({ collect: () => collected.push(i - 1), utilization: () => loads[i++] ?? 0, quietUtilization: 0.1 });
  const ticks = (n: number) => {
    for (let k = 0; k < n; k++) reclaim.tick();
  };
  return { reclaim, collected, ticks };
}

describe('IdleReclaim: full collections once a busy period is over', () => {
  it('collects twice after start-up (start-up counts as busy), then leaves a quiet gateway alone', () => {
    const { collected, ticks } = driven([0, 0, 0, 0, 0, 0]);
    ticks(6);
    expect(collected).toEqual([0, 1]);
  });

  it('a busy interval re-arms two collections, run on the next quiet intervals, never while busy', () => {
    //              start-up    busy        quiet       busy  quiet     quiet
    const { collected, ticks } = driven([0, 0, 0.5, 0.9, 0, 0, 0, 0.3, 0.01, 0.1, 0.01]);
    ticks(11);
    expect(collected).toEqual([0, 1, 4, 5, 8, 9]);
  });

  it('quiet means at most quietUtilization: a collection interrupted by load waits for the next quiet interval', () => {
    const { collected, ticks } = driven([0.5, 0, 0.5, 0, 0]);
    ticks(5);
    // 0.5 arms, 0 collects, 0.5 re-arms (two again), then two quiet ones collect
    expect(collected).toEqual([1, 3, 4]);
  });

  it('without a collector it does nothing and start() sets no timer', () => {
    const reclaim = new IdleReclaim({ collect: null, utilization: () => 0 });
    reclaim.start();
    reclaim.tick();
    expect(reclaim.collections).toBe(0);
    reclaim.stop();
  });

  it("start() ticks every intervalMs on an unref'd timer; stop() ends it", async () => {
    let n = 0;
    const reclaim = new IdleReclaim({ intervalMs: 20, collect: () => n++, utilization: () => 0 });
    reclaim.start();
    await new Promise((r) => setTimeout(r, 150));
    reclaim.stop();
    expect(n).toBe(2);
    expect(reclaim.collections).toBe(2);
  });
});

describe('fullGc: V8 full collection without --expose-gc', () => {
  it('returns a working collector, and leaves gc unexposed to contexts made afterwards', () => {
    expect(process.execArgv).not.toContain('--expose-gc');
    const gc = fullGc();
    expect(gc).toBeTypeOf('function');
    // garbage in the young generation is gone after one call
    let junk: unknown[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    expect(junk.length).toBe(200_000);
    // eslint-disable-next-line no-useless-assignment -- drops the only reference, so the collection has garbage to find
    junk = null;
    gc!();
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!;
    expect(young.space_used_size).toBeLessThan(1024 * 1024);
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
