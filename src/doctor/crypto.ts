import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Cluster } from '../config/cluster.js';
import { cryptoFix, FALLBACK_COST, sshCryptoBackend, type CryptoBackend } from '../ssh/cryptoBackend.js';
import type { Row } from './report.js';

const CHECK = 'ssh2 crypto';

/**
 * Asks the installed gateway's own Node (systemd.nodeBinary running the modules beside
 * systemd.cli) which crypto ssh2 gets: that is what the unit will run, even when the
 * doctor itself runs under another Node. Null when that install is not on this host.
 */
function askInstalled(cluster: Cluster): { backend: CryptoBackend; target: string } | { error: string; target: string } | null {
  const { nodeBinary, cli } = cluster.systemd;
  const module = join(dirname(cli), 'ssh', 'cryptoBackend.js');
  if (!existsSync(nodeBinary) || !existsSync(module)) return null;
  const target = `${nodeBinary} + ${dirname(dirname(dirname(cli)))}`;
  const script = `const { sshCryptoBackend } = await import(${JSON.stringify(pathToFileURL(module).href)}); process.stdout.write(JSON.stringify(sshCryptoBackend()));`;
  const r = spawnSync(nodeBinary, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) return { error: `${nodeBinary} could not run the check (exit ${r.status ?? r.signal}): ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`, target };
  try {
    return { backend: JSON.parse(r.stdout) as CryptoBackend, target };
  } catch {
    return { error: `unexpected answer from ${nodeBinary}: ${r.stdout.slice(0, 120)}`, target };
  }
}

/**
 * Whether ssh2's native crypto binding loads. With --node: under the unit's Node and the
 * installed modules; otherwise (or when they are not here) in the doctor's own process.
 */
export function cryptoRow(cluster: Cluster, onNode: boolean): Row {
  const installed = onNode ? askInstalled(cluster) : null;
  if (installed && 'error' in installed) {
    return { check: CHECK, target: installed.target, verdict: 'fail', detail: installed.error, fix: cryptoFix(dirname(dirname(dirname(cluster.systemd.cli)))) };
  }
  const b = installed?.backend ?? sshCryptoBackend();
  const target = installed?.target ?? 'this process';
  if (b.backend === 'native') return { check: CHECK, target, verdict: 'ok', detail: `native binding loads (node ${b.node}, ABI ${b.abi})` };
  return {
    check: CHECK,
    target,
    verdict: 'fail',
    detail: `${FALLBACK_COST}: ${b.binding} does not load under node ${b.node} (ABI ${b.abi}): ${b.error}`,
    fix: b.fix ?? cryptoFix(),
  };
}
