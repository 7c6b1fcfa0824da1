const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The one polling helper: checks every everyMs until check() holds or timeoutMs has passed.
 * Returns the time taken, or null on timeout; the caller asserts, naming what it waited for
 * (`expect(await until(...), 'READY=1').not.toBeNull()`), or looks at the state itself.
 * Tests on vitest's fake clock pass wait = (ms) => vi.advanceTimersByTimeAsync(ms).
 */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50, wait: (ms: number) => Promise<unknown> = sleep): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await wait(everyMs);
  }
  return (await check()) ? Date.now() - start : null;
}
