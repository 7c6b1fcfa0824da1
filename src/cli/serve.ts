import { userInfo } from 'node:os';
import { relative } from 'node:path';
import { loadConfigFile, parseConfig } from '../config/load.js';
import { loadClusterFile, nodeConfigFromCluster } from '../config/clusterLoad.js';
import { prepareEmbeddedSetup, writeKnownHosts } from '../bootstrap/stateDir.js';
import { loadHostKeys } from '../ssh/hostKeys.js';
import { resolveServerToken } from '../http/token.js';
import { envAllowList } from '../exec/environment.js';
import { errors } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exitCodes.js';
import { VERSION } from '../version.js';
import { stringFlag, type Verb } from './common.js';

export const serve: Verb = {
  summary: 'run the gateway',
  usage: `execgate serve                                 single node, embedded defaults (state in ./.execgate)
  execgate serve --config FILE                   single node from a YAML config
  execgate serve --cluster FILE --node NAME      one node of a cluster file
  add --check to validate and exit; embedded defaults take --state-dir DIR --host ADDR --port N --http-port N`,
  options: {
    config: { type: 'string', short: 'c' },
    cluster: { type: 'string' },
    node: { type: 'string' },
    check: { type: 'boolean' },
    'state-dir': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'http-port': { type: 'string' },
  },
  async run(flags) {
    let hint: ((boundPort: number) => string) | null = null;
    const configPath = stringFlag(flags, 'config');
    const clusterPath = stringFlag(flags, 'cluster');
    let start;
    if (clusterPath) {
      const node = stringFlag(flags, 'node');
      if (!node) throw errors.serveClusterNeedsNode();
      const cluster = loadClusterFile(clusterPath);
      start = { config: nodeConfigFromCluster(cluster, node, clusterPath), cluster };
    } else if (configPath) {
      start = { config: loadConfigFile(configPath) };
    } else {
      const host = stringFlag(flags, 'host') ?? '127.0.0.1';
      const port = Number(stringFlag(flags, 'port') ?? 2222);
      const stateDir = stringFlag(flags, 'state-dir') ?? process.env.EXECGATE_STATE_DIR ?? '.execgate';
      const httpPort = Number(stringFlag(flags, 'http-port') ?? 9422);
      const setup = prepareEmbeddedSetup(stateDir, host, port, httpPort);
      start = { config: parseConfig(setup.config, 'embedded defaults', setup.stateDir) };
      if (setup.rootNotice && !flags.check) process.stderr.write(setup.rootNotice);
      const rel = (p: string) => (relative(process.cwd(), p).startsWith('..') ? p : relative(process.cwd(), p));
      // With --port 0 the port is known only once bound: the hint and known_hosts use the bound one.
      hint = (bound: number) => {
        if (bound !== port) writeKnownHosts(setup.knownHosts, setup.config.hostKeys ?? [], host, bound);
        return (
          `execgate ${VERSION}: single-node gateway on ${host}:${bound}, state in ${rel(setup.stateDir)}\n` +
          `Try it:\n  ssh -i ${rel(setup.clientKey)} -o IdentitiesOnly=yes -o UserKnownHostsFile=${rel(setup.knownHosts)} ` +
          `-p ${bound} ${userInfo().username}@${host} 'echo hello from $EXECGATE_NODE'\n`
        );
      };
    }
    if (flags.check) {
      loadHostKeys(start.config.hostKeys);
      resolveServerToken(start.config.http);
      envAllowList(start.config.env.allow, start.config.env.allowUnsafe);
      process.stdout.write('config OK\n');
      return;
    }
    // Loaded here, not at the top: every other verb and --help start without the gateway's modules.
    const { startGateway } = await import('../gateway.js');
    const gateway = await startGateway(start.config, start.cluster);
    if (hint) {
      const page = gateway.httpAddress ? `Status page: http://${gateway.httpAddress.host}:${gateway.httpAddress.port}/  (execgate status | drain | undrain)\n` : '';
      process.stderr.write(hint(gateway.address.port) + page);
    }
    let signals = 0;
    const onSignal = (signal: string) => {
      if (++signals > 1) process.exit(EXIT_FAILURE);
      void gateway.stop(signal).then(() => process.exit(EXIT_OK));
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    // SIGHUP (logrotate's postrotate, systemctl reload): reopen the audit log. Without a
    // handler SIGHUP would end the gateway.
    process.on('SIGHUP', () => {
      gateway.reopenAudit().catch((err: Error) => gateway.log.error({ err: err.message }, 'audit log reopen failed'));
    });
    // For leak hunts: SIGUSR2 logs memory use, after a full collection when node runs with --expose-gc.
    process.on('SIGUSR2', () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const m = process.memoryUsage();
      gateway.log.info({ collected: gc !== undefined, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }, 'memory usage');
    });
  },
};
