import { loadClusterFile } from '../config/clusterLoad.js';
import { applyEtcdSetup, etcdctlScript } from '../etcd/setup.js';
import { readEtcdPassword } from '../etcd/password.js';
import { EXIT_CHECK_FAILED } from '../exitCodes.js';
import { ExecgateError, errors } from '../errors.js';
import { requireFlag, stringFlag, type Verb } from './common.js';

export const etcdSetup: Verb = {
  summary: "turn on etcd's authentication with the gateways' user limited to the cluster's keys",
  usage: `execgate etcd-setup --cluster FILE [--node NAME]
                                            print the etcdctl script (role, user, auth enable)
  execgate etcd-setup --cluster FILE --apply --root-password-file FILE [--node NAME]
                                            do it now as etcd's root user, over NAME's TLS files
                                            (default: the first node); safe to repeat: an existing
                                            user's password is set from its file again (rotation)`,
  options: { cluster: { type: 'string' }, node: { type: 'string' }, apply: { type: 'boolean' }, 'root-password-file': { type: 'string' } },
  async run(flags) {
    const cluster = loadClusterFile(requireFlag(flags, 'cluster', 'etcd-setup'));
    const nodeFlag = stringFlag(flags, 'node');
    if (nodeFlag !== undefined && !cluster.nodes.some((n) => n.name === nodeFlag))
      throw errors.etcdSetupUnknownNode(
        nodeFlag,
        cluster.nodes.map((n) => n.name),
      );
    const node = nodeFlag ?? cluster.nodes[0]!.name;
    const rootPasswordFile = stringFlag(flags, 'root-password-file');
    if (flags.apply !== true) {
      process.stdout.write(etcdctlScript(cluster, { node, rootPasswordFile }));
      return;
    }
    if (!rootPasswordFile) throw errors.etcdSetupNeedsRootPassword();
    const rootPassword = readEtcdPassword(rootPasswordFile, node, '--root-password-file');
    try {
      await applyEtcdSetup(cluster, { node, rootPassword, log: (line) => process.stdout.write(`${line}\n`) });
      process.stdout.write(`etcd is set up for cluster "${cluster.cluster}"\n`);
    } catch (err) {
      if (err instanceof ExecgateError) throw err;
      process.stderr.write(`execgate: etcd-setup failed: ${(err as Error).message}\n`);
      process.exitCode = EXIT_CHECK_FAILED;
    }
  },
};
