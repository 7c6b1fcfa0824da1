import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labPrerequisites } from './namespaces.js';
import type { Topology } from './topology.js';

/** Where the lab finds the checkout and the programs it runs, and which of them are missing. */
function findRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'src'))) return d;
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the execgate checkout');
    d = up;
  }
}
export const ROOT = findRoot();
export const CLI = join(ROOT, 'dist/src/cli.js');
export const DRIVER = join(ROOT, 'dist/deploy/lab/netns/driver.js');
export const KEEPALIVED = '/usr/sbin/keepalived';
export const HAPROXY = '/usr/sbin/haproxy';
export const ETCD = '/usr/bin/etcd';
export const JSCH_JAR = '/usr/share/java/jsch.jar';

export function prerequisites(topology: Topology): string[] {
  const extra = [KEEPALIVED, '/usr/bin/curl', '/usr/bin/unshare', '/usr/bin/nsenter', '/usr/sbin/bridge', JSCH_JAR, CLI, DRIVER];
  if (topology !== 'vrrp') extra.push(ETCD);
  if (topology === 'haproxy-etcd') extra.push(HAPROXY);
  const missing = labPrerequisites(extra);
  if (spawnSync('javac', ['-version']).status !== 0) missing.push('javac (default-jdk-headless)');
  return missing;
}
