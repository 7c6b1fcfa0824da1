import { writeFileSync, renameSync } from 'node:fs';
import { loadClusterFile } from '../config/clusterLoad.js';
import { errors } from '../errors.js';
import { renderKeepalived } from '../render/keepalived.js';
import { renderHaproxy } from '../render/haproxy.js';
import { renderSystemd } from '../render/systemd.js';
import { renderLogrotate } from '../render/logrotate.js';
import { requireFlag, stringFlag, type Verb } from './common.js';

const targets = ['keepalived', 'haproxy', 'systemd', 'logrotate'] as const;

/** Writes via a temp file + rename so a reload never reads half a config. */
function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}

export const render: Verb = {
  summary: "generate keepalived.conf, haproxy.cfg, the systemd unit or the audit log's logrotate config from a cluster file",
  usage: `execgate render keepalived --cluster FILE --node NAME [--out FILE]
  execgate render haproxy --cluster FILE [--out FILE]
  execgate render systemd --cluster FILE --node NAME [--out FILE]
  execgate render logrotate --cluster FILE [--out FILE]`,
  options: { cluster: { type: 'string' }, node: { type: 'string' }, out: { type: 'string' } },
  async run(flags, positionals) {
    const target = positionals[0];
    if (!target || !(targets as readonly string[]).includes(target)) {
      throw errors.renderTargetMissing(targets);
    }
    const clusterPath = requireFlag(flags, 'cluster', `render ${target}`);
    const cluster = loadClusterFile(clusterPath);
    let text: string;
    if (target === 'haproxy') {
      text = renderHaproxy(cluster, clusterPath);
    } else if (target === 'logrotate') {
      text = renderLogrotate(cluster, clusterPath);
    } else {
      const node = stringFlag(flags, 'node');
      if (!node) {
        throw errors.renderNeedsNode(
          target,
          cluster.nodes.map((n) => n.name),
        );
      }
      text = target === 'keepalived' ? renderKeepalived(cluster, node, clusterPath) : renderSystemd(cluster, node, { source: clusterPath });
    }
    const out = stringFlag(flags, 'out');
    if (out && out !== '-') writeAtomically(out, text);
    else process.stdout.write(text);
  },
};
