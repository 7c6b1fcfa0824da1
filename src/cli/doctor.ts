import { loadClusterFile } from '../config/clusterLoad.js';
import { runDoctor } from '../doctor/doctor.js';
import { failed, formatTable } from '../doctor/report.js';
import { EXIT_CHECK_FAILED } from '../exitCodes.js';
import { requireFlag, stringFlag, type Verb } from './common.js';

export const doctor: Verb = {
  summary: 'check a cluster: files, generated configs, peers, host keys, clocks, leaders, etcd',
  usage: `execgate doctor --cluster FILE [--node NAME] [--token TOKEN] [--json]
                                            exits 1 when any check fails; --node also compares
                                            this node's installed keepalived.conf and unit and
                                            checks its etcd TLS files, certificates and login;
                                            peers are asked with --token, else the cluster's
                                            token (gateway.http.tokenFile)`,
  options: { cluster: { type: 'string' }, node: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } },
  async run(flags) {
    const clusterPath = requireFlag(flags, 'cluster', 'doctor');
    const cluster = loadClusterFile(clusterPath);
    const rows = await runDoctor(cluster, {
      clusterPath,
      node: stringFlag(flags, 'node'),
      token: stringFlag(flags, 'token'),
    });
    process.stdout.write(flags.json ? JSON.stringify({ ok: !failed(rows), rows }, null, 2) + '\n' : formatTable(rows));
    if (failed(rows)) process.exitCode = EXIT_CHECK_FAILED;
  },
};
