import { defineConfig } from 'vitest/config';

// Four projects, run one group after another (sequence.groupOrder):
// - unit: pure and fast (no child processes; network only on loopback, in-process), files in parallel;
// - tools: real external binaries (keepalived, haproxy, logrotate, ssh-keygen, vagrant, python3,
//   setpriv + curl, etcd, the package build), but no gateway;
// - integration: real gateways, ssh clients and process trees;
// - lab: network namespaces, etcd clusters and packages.
// The last three run files one at a time, so their timings and process-group checks do not
// disturb each other, and no two of them overlap since each group waits for the one before.
const serial = { fileParallelism: false, testTimeout: 120_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], fileParallelism: true, testTimeout: 120_000, hookTimeout: 60_000, sequence: { groupOrder: 0 } } },
      { test: { name: 'tools', include: ['test/tools/**/*.test.ts'], ...serial, sequence: { groupOrder: 1 } } },
      { test: { name: 'integration', include: ['test/integration/**/*.test.ts'], ...serial, sequence: { groupOrder: 2 } } },
      { test: { name: 'lab', include: ['test/lab/**/*.test.ts'], ...serial, sequence: { groupOrder: 3 } } },
    ],
  },
});
