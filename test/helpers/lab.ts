import { it } from 'vitest';

/**
 * Tests that need root or lab tools: without EXECGATE_REQUIRE_LAB they skip with the
 * reason; with it (CI) a missing prerequisite is a failure, never a silent skip.
 */
export function labIt(name: string, missing: string | null, fn: () => Promise<void>, timeout?: number): void {
  if (missing === null) return void it(name, fn, timeout);
  if (process.env.EXECGATE_REQUIRE_LAB === '1') {
    return void it(name, () => {
      throw new Error(`prerequisite missing: ${missing} (EXECGATE_REQUIRE_LAB=1 makes this a failure)`);
    });
  }
  it.skip(`${name} [skipped: ${missing}]`, fn);
}

export const notRoot = (): string | null => (process.getuid?.() === 0 ? null : 'needs root');
