import { createHash } from 'node:crypto';

/** Rundeck's dispatch script: /tmp/<counter>-<execid>-<rundeck node>-dispatch-script.tmp.sh */
const DISPATCH = /(?:\/[^\s'"]*)?\/\d+-(\d+)-[^\s'"/]*-dispatch-script[^\s'"]*/g;

/** The execution id: RD_JOB_EXECID, else the one inside a dispatch-script path. */
export function findExecutionId(env: ReadonlyMap<string, string>, command: string): string | null {
  const fromEnv = env.get('RD_JOB_EXECID');
  if (fromEnv && /^\d+$/.test(fromEnv)) return fromEnv;
  DISPATCH.lastIndex = 0;
  const m = DISPATCH.exec(command);
  return m ? m[1]! : null;
}

/**
 * Steps every node must run for itself: the script upload and its chmod and rm
 * (each node needs its own copy). Only the step's real work is deduplicated.
 */
export function isPerNodeStep(command: string): boolean {
  const c = command.trim();
  if (/^scp(\s+-[a-zA-Z]+)*\s+-[a-zA-Z]*t\b/.test(c)) return true;
  return /^(chmod \+x|rm -f)\s+['"]?\S*dispatch-script\S*['"]?$/.test(c);
}

/**
 * A digest of the command line with the node-specific parts made equal: the dispatch
 * path (counter and Rundeck node name) and the names this node goes by.
 */
export function stepDigest(command: string, nodeNames: string[]): string {
  let normal = command.replace(DISPATCH, (_m, execId: string) => `<dispatch:${execId}>`);
  for (const name of nodeNames.filter((n) => n.length > 0).sort((a, b) => b.length - a.length)) {
    normal = normal.split(name).join('<node>');
  }
  return createHash('sha256').update(normal).digest('hex').slice(0, 32);
}

/**
 * How often this node has seen one (execution id, digest) pair: the same step sent
 * to gw1 and gw2 is occurrence 1 on both, while two identical steps in one workflow
 * are occurrences 1 and 2. Entries older than the retention are forgotten.
 */
export class OccurrenceCounter {
  private readonly seen = new Map<string, { count: number; at: number }>();

  constructor(private readonly retentionMs: number) {}

  next(execId: string, digest: string, now = Date.now()): number {
    const key = `${execId}/${digest}`;
    const entry = this.seen.get(key);
    const count = (entry?.count ?? 0) + 1;
    this.seen.set(key, { count, at: now });
    if (this.seen.size > 10_000) {
      for (const [k, v] of this.seen) if (now - v.at > this.retentionMs) this.seen.delete(k);
    }
    return count;
  }
}
