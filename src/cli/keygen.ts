import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadClusterFile } from '../config/clusterLoad.js';
import { generateHostKeys, loadHostKey } from '../ssh/hostKeys.js';
import { errors } from '../errors.js';
import { stringFlag, type Verb } from './common.js';

export const keygen: Verb = {
  summary: 'write host keys',
  usage: `execgate keygen --dir DIR [--force]       ed25519 + RSA 3072 host keys (old JSch cannot use ed25519)
  execgate keygen --cluster FILE [--dir DIR] [--force]
                                            the ONE host key set every node of the cluster serves
                                            (default DIR: where the cluster's gateway.hostKeys are),
                                            plus a known_hosts for the VIP and every node`,
  options: { dir: { type: 'string' }, cluster: { type: 'string' }, force: { type: 'boolean' } },
  async run(flags) {
    const clusterPath = stringFlag(flags, 'cluster');
    const dirFlag = stringFlag(flags, 'dir');
    if (!clusterPath) {
      if (!dirFlag) throw errors.keygenNeedsDir();
      for (const path of generateHostKeys(dirFlag, flags.force === true)) process.stdout.write(`${path}\n`);
      return;
    }
    const cluster = loadClusterFile(clusterPath);
    const base = dirname(resolve(clusterPath));
    const configured = cluster.gateway.hostKeys.map((p) => resolve(base, p));
    const dir = dirFlag ? resolve(dirFlag) : dirname(configured[0]!);
    const written = generateHostKeys(dir, flags.force === true);
    const missing = configured.filter((p) => !written.includes(p));
    if (missing.length) {
      process.stderr.write(`execgate: warning: gateway.hostKeys lists ${missing.join(', ')}, which keygen does not write; list ${written.join(' and ')} instead\n`);
    }
    // Every node serves these same keys: strict host key checking survives a failover.
    const hosts = [
      cluster.vip.sshPort === 22 ? cluster.vip.address : `[${cluster.vip.address}]:${cluster.vip.sshPort}`,
      ...cluster.nodes.map((n) => (n.sshPort === 22 ? n.address : `[${n.address}]:${n.sshPort}`)),
      ...cluster.loadBalancers.map((a) => (cluster.haproxy.sshPort === 22 ? a : `[${a}]:${cluster.haproxy.sshPort}`)),
    ];
    const knownHosts = join(dir, 'known_hosts');
    const lines = written.map((p) => {
      const pub = readFileSync(`${p}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
      return `${[...new Set(hosts)].join(',')} ${pub}`;
    });
    writeFileSync(knownHosts, lines.join('\n') + '\n', { mode: 0o644 });
    for (const p of written) process.stdout.write(`${p} ${loadHostKey(p).fingerprint}\n`);
    process.stdout.write(`${knownHosts}\n`);
    process.stdout.write(`Copy ${dir} to every node of cluster "${cluster.cluster}" (install.sh --host-keys ${dir} does it); never generate keys per node.\n`);
  },
};
