import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { clusterSchema, type Cluster } from './cluster.js';
import { describeIssues, parseConfig } from './load.js';
import type { Config } from './schema.js';
import { errors, ExecgateError } from '../errors.js';

/** Cross-field rules zod cannot express per field; each message names the field. */
export function clusterProblems(cluster: Cluster): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  cluster.nodes.forEach((n, i) => {
    if (seen.has(n.name)) problems.push(`nodes.${i}.name: "${n.name}" is used by nodes.${seen.get(n.name)} too; node names must be unique`);
    seen.set(n.name, i);
  });
  if (cluster.leadership.source === 'etcd' && !cluster.leadership.etcd) {
    problems.push('leadership.etcd: required when leadership.source is "etcd" (endpoints, ttlSeconds, marginSeconds)');
  }
  const etcd = cluster.leadership.etcd;
  if (etcd && etcd.ttlSeconds < 3 * etcd.marginSeconds) {
    problems.push(`leadership.etcd.ttlSeconds: ${etcd.ttlSeconds} is less than 3 x marginSeconds (${etcd.marginSeconds}); a leader would fence itself almost at once`);
  }
  return problems;
}

export function parseCluster(raw: unknown, source: string): Cluster {
  const result = clusterSchema.safeParse(raw ?? {});
  if (!result.success) throw errors.configInvalid(source, describeIssues(result.error.issues));
  const problems = clusterProblems(result.data);
  if (problems.length) throw errors.configInvalid(source, problems);
  return result.data;
}

export function loadClusterFile(path: string): Cluster {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw errors.configUnreadable(path, (err as Error).message);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw errors.configSyntax(path, err instanceof YAMLParseError ? err.message.split('\n')[0]! : (err as Error).message);
  }
  return parseCluster(raw, path);
}

/** The single-node config of one cluster member: shared gateway settings + its own addresses. */
export function nodeConfigFromCluster(cluster: Cluster, nodeName: string, source: string): Config {
  const node = cluster.nodes.find((n) => n.name === nodeName);
  if (!node) {
    throw new ExecgateError(
      'EG_CLUSTER_NODE',
      `node "${nodeName}" is not in ${source}; its nodes are: ${cluster.nodes.map((n) => n.name).join(', ')}`,
    );
  }
  const alsoListen =
    cluster.vip.bind === 'nonlocal'
      ? [{ host: cluster.vip.address, port: cluster.vip.sshPort }]
      : [{ host: cluster.vip.address, port: node.sshPort }];
  return parseConfig(
    {
      ...cluster.gateway,
      node: node.name,
      listen: { host: node.address, port: node.sshPort },
      alsoListen,
      http: { ...cluster.gateway.http, host: node.address, port: node.httpPort },
    },
    source,
    dirname(resolve(source)),
  );
}
