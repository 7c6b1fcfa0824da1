import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCluster, loadClusterFile } from '../../src/config/clusterLoad.js';
import type { ClusterInput } from '../../src/config/cluster.js';
import { renderLogrotate } from '../../src/render/logrotate.js';
import { renderSystemd } from '../../src/render/systemd.js';
import { AuditLog } from '../../src/audit/auditLog.js';
import { endFields } from '../helpers/auditFixtures.js';
import { labIt } from '../helpers/lab.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli.js');
const EXAMPLE = join(ROOT, 'deploy/example-cluster.yaml');
const logrotateMissing = spawnSync('logrotate', ['--version']).status === 0 ? null : 'logrotate is not installed (apt-get install logrotate)';

function cluster(auditPath: string, nodes = 2, over: Partial<ClusterInput> = {}) {
  return parseCluster(
    {
      cluster: 'test',
      vip: { address: '198.18.0.100', prefixLength: 24, interface: 'eth0' },
      leadership: { source: 'etcd', etcd: { endpoints: ['https://127.0.0.1:2379'], ttlSeconds: 5, marginSeconds: 1 } },
      gateway: { hostKeys: ['/etc/execgate/k'], authorizedKeys: '/etc/execgate/ak', audit: { path: auditPath } },
      nodes: Array.from({ length: nodes }, (_, i) => ({ name: `gw${i + 1}`, address: `198.18.0.${11 + i}`, priority: 150 - 10 * i })),
      ...over,
    },
    'test.yaml',
  );
}

describe('logrotate renderer', () => {
  it('rotates the audit path by rename, never copytruncate, keeps path.1 plain, reloads the unit', () => {
    const text = renderLogrotate(cluster('/var/log/eg/audit.jsonl', 1, { systemd: { unit: 'eg-a' } }));
    expect(text).toMatch(/^\/var\/log\/eg\/audit\.jsonl \{$/m);
    expect(text).not.toMatch(/^\s*copytruncate/m);
    expect(text).toMatch(/^\s*nocreate$/m);
    expect(text).toMatch(/^\s*delaycompress$/m);
    expect(text).toMatch(/^\s*systemctl reload eg-a\.service > \/dev\/null 2>&1 \|\| true$/m);
  });

  it('the committed deploy/logrotate/execgate is a fresh render of the example cluster, and the CLI prints the same', () => {
    const fresh = renderLogrotate(loadClusterFile(EXAMPLE), EXAMPLE);
    expect(readFileSync(join(ROOT, 'deploy/logrotate/execgate'), 'utf8'), 'run: execgate render logrotate --cluster deploy/example-cluster.yaml --out deploy/logrotate/execgate').toBe(fresh);
    const r = spawnSync(process.execPath, [CLI, 'render', 'logrotate', '--cluster', EXAMPLE], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(fresh);
  });

  it('the systemd unit reloads with SIGHUP to the main process only (not the commands)', () => {
    expect(renderSystemd(cluster('/var/log/eg/audit.jsonl'), 'gw1')).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  });

  labIt('real logrotate: accepted, and after its rotation the next audit line lands in the new file', logrotateMissing, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'execgate-logrotate-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const conf = join(dir, 'execgate.logrotate');
      writeFileSync(conf, renderLogrotate(cluster(path)));
      const log = new AuditLog(path);
      await log.open();
      await log.end(endFields('before-rotation'));
      const r = spawnSync('logrotate', ['-f', '-s', join(dir, 'state'), conf], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(existsSync(`${path}.1`)).toBe(true);
      await log.end(endFields('after-rotation'));
      const read = (p: string) =>
        readFileSync(p, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(read(`${path}.1`).map((x) => x.execId)).toEqual(['before-rotation']);
      expect(read(path).map((x) => x.execId ?? x.reason)).toEqual(['rotated', 'after-rotation']);
      await log.close(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
