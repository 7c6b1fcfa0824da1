import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaseFence } from '../../src/leadership/leaseFence.js';
import { nextElectionPollMs } from '../../src/leadership/electionPoll.js';
import { FAST_POLL_MS, SUCCESSOR_POLL_MS } from '../../src/leadership/handover/timings.js';

describe('LeaseFence', () => {
  let t = 0;
  const now = () => t;
  beforeEach(() => {
    vi.useFakeTimers();
    t = 1000;
  });
  afterEach(() => vi.useRealTimers());

  it('has no deadline until a renewal; the deadline is send time + ttl - margin and never moves earlier', () => {
    const f = new LeaseFence(now, 500);
    expect(f.passed()).toBe(true);
    expect(f.extend(1000, 2)).toBe(true);
    expect(f.at).toBe(2500);
    expect(f.expiresBy).toBe(3000);
    expect(f.extend(900, 2)).toBe(false); // an older renewal answered late
    expect(f.at).toBe(2500);
    t = 2499;
    expect(f.passed()).toBe(false);
    t = 2500;
    expect(f.passed()).toBe(true);
  });

  it('fires at the deadline unless a renewal moved it, and only while it matters', () => {
    const clock = () => Date.now();
    vi.setSystemTime(1000);
    const f = new LeaseFence(clock, 500);
    const fired: number[] = [];
    let matters = true;
    f.extend(1000, 2); // deadline 2500
    f.arm(
      () => matters,
      () => fired.push(Date.now()),
    );
    vi.advanceTimersByTime(900);
    f.extend(1900, 2); // renewed: deadline 3400
    vi.advanceTimersByTime(600); // 2500: the timer finds the deadline moved and re-arms
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(899);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([3400]);
    f.extend(3400, 2); // deadline 4900
    f.arm(
      () => matters,
      () => fired.push(Date.now()),
    );
    matters = false;
    vi.advanceTimersByTime(2000);
    expect(fired).toEqual([3400]);
    f.reset();
    expect(f.at).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('nextElectionPollMs', () => {
  it('polls fast while a lead is about to move, a little faster as next in line, else at the base interval', () => {
    const base = { baseMs: 250, waitingForLead: false, handover: false, successor: false };
    expect(nextElectionPollMs(base)).toBe(250);
    expect(nextElectionPollMs({ ...base, successor: true })).toBe(SUCCESSOR_POLL_MS);
    expect(nextElectionPollMs({ ...base, successor: true, handover: true })).toBe(FAST_POLL_MS);
    expect(nextElectionPollMs({ ...base, waitingForLead: true })).toBe(FAST_POLL_MS);
    expect(nextElectionPollMs({ ...base, baseMs: 10, waitingForLead: true })).toBe(10);
  });
});
