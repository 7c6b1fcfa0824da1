import { defineConfig } from 'vitest/config';

// Suites start real servers, ssh clients and process trees: run files one at a time
// so their timings and process-group checks do not disturb each other.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
