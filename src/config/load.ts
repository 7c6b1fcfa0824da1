import { readFileSync } from 'node:fs';
import { dirname, resolve, isAbsolute } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { etcdConnectionProblems } from './etcdConnection.js';
import { errors } from '../errors.js';

/** Turns zod issues into "key.path: what was expected" lines an operator can act on. */
export function describeIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => (where === '(top level)' ? k : `${where}.${k}`));
      return `${keys.join(', ')}: unknown key${keys.length > 1 ? 's' : ''} (check the spelling; see README "Configuration")`;
    }
    return `${where}: ${issue.message}`;
  });
}

export function parseConfig(raw: unknown, source: string, baseDir: string): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) throw errors.configInvalid(source, describeIssues(result.error.issues));
  if (result.data.runOnce.enabled && !result.data.runOnce.etcd) {
    throw errors.configInvalid(source, ['runOnce.etcd: required when runOnce.enabled is true (claims live in etcd; run-once never runs unguarded); in a cluster file the leadership etcd is used']);
  }
  const etcdProblems = result.data.runOnce.etcd ? etcdConnectionProblems(result.data.runOnce.etcd, 'runOnce.etcd') : [];
  if (etcdProblems.length) throw errors.configInvalid(source, etcdProblems);
  return resolvePaths(result.data, baseDir);
}

/** Relative file paths in a config file are relative to that file, not to the cwd. */
function resolvePaths(config: Config, baseDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...config,
    hostKeys: config.hostKeys.map(abs),
    // %h/... is relative to the account's home, resolved at authentication.
    authorizedKeys: config.authorizedKeys.startsWith('%h/') ? config.authorizedKeys : abs(config.authorizedKeys),
    audit: { ...config.audit, path: abs(config.audit.path) },
    ...(config.stateDir === undefined ? {} : { stateDir: abs(config.stateDir) }),
    http: config.http.tokenFile === undefined ? config.http : { ...config.http, tokenFile: abs(config.http.tokenFile) },
  };
}

/** Reads and parses a YAML file, with errors that name the file and the problem. */
export function readYamlFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw errors.configUnreadable(path, (err as Error).message);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    const reason = err instanceof YAMLParseError ? err.message.split('\n')[0]! : (err as Error).message;
    throw errors.configSyntax(path, reason);
  }
}

export function loadConfigFile(path: string): Config {
  return parseConfig(readYamlFile(path), path, dirname(resolve(path)));
}
