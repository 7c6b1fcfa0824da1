import { posix } from 'node:path';
import { isDispatchScriptPath } from '../exec/dispatchScript.js';

/**
 * Why a peer may not write (or remove) this path, or null when it may: a Rundeck
 * dispatch-script name, normalised (no "..", "//" or "."), directly inside one of the
 * configured directories (leadership.scriptReplication.directories).
 */
export function replicaPathProblem(path: string, directories: readonly string[]): string | null {
  if (typeof path !== 'string' || path.length === 0) return 'no path given';
  if (path.length > 4096 || /[\x00-\x1f\x7f]/.test(path)) return 'the path has control characters or is over 4096 bytes';
  if (!posix.isAbsolute(path) || posix.normalize(path) !== path) return `${path} is not a normalised absolute path`;
  if (!isDispatchScriptPath(path)) return `${path} is not a Rundeck dispatch-script path (<n>-<execid>-<node>-dispatch-script.tmp[.ext])`;
  const dir = posix.dirname(path);
  if (!directories.includes(dir)) {
    return `${path} is not directly in ${directories.join(' or ')} (leadership.scriptReplication.directories)`;
  }
  return null;
}
