import { resolve } from 'node:path';
import { loadClusterFile } from '../config/clusterLoad.js';
import { makeClusterCerts } from '../certs/make.js';
import { certPaths } from '../certs/paths.js';
import { errors } from '../errors.js';
import { requireFlag, stringFlag, type Verb } from './common.js';

export const certs: Verb = {
  summary: "make the cluster's etcd TLS certificates and passwords",
  usage: `execgate certs --cluster FILE --dir DIR [--days N] [--force]
                                            a CA (kept and reused), a server+client certificate per etcd
                                            member, a client certificate per gateway (valid N days, default
                                            365), the etcd passwords; existing certificates are kept unless
                                            --force (which reissues them from the same CA: the rotation)`,
  options: { cluster: { type: 'string' }, dir: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } },
  async run(flags) {
    const cluster = loadClusterFile(requireFlag(flags, 'cluster', 'certs'));
    const dir = resolve(requireFlag(flags, 'dir', 'certs'));
    const daysFlag = stringFlag(flags, 'days');
    const days = daysFlag === undefined ? undefined : /^\d+$/.test(daysFlag) ? Number(daysFlag) : NaN;
    if (days !== undefined && Number.isNaN(days)) throw errors.certsDays(daysFlag!, 3650);
    const report = makeClusterCerts(cluster, dir, { days, force: flags.force === true });
    for (const f of report.files) {
      const until = f.notAfter ? ` (valid until ${f.notAfter.toISOString().slice(0, 10)})` : '';
      process.stdout.write(`${f.made ? 'made' : 'kept'}  ${f.path}  ${f.what}${until}\n      -> ${f.installTo}\n`);
    }
    const p = certPaths(dir);
    process.stdout.write(
      `\nNext: install the files (install.sh puts each where shown), start etcd with them, then\n` +
        `  execgate etcd-setup --cluster FILE --apply --root-password-file ${p.rootPassword}\n` +
        `turns on etcd's authentication with the gateways' user limited to the cluster's keys.\n`,
    );
  },
};
