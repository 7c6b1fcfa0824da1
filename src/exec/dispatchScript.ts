import { existsSync } from 'node:fs';
import { basename, isAbsolute } from 'node:path';

/**
 * Rundeck runs a script step as four connections: `scp -t <path>` (upload),
 * `chmod +x <path>`, `<path> args...` (or `<interpreter> <path> args...`) and
 * `rm -f <path>`, where <path> is `<dir>/<n>-<execid>-<node>-dispatch-script.tmp.<ext>`.
 * When the leadership moves between the upload and the exec, the exec lands on a node
 * that never received the file. Running it there would fail in a confusing way (or,
 * with a stale file of the same name, succeed wrongly); instead execgate refuses with
 * a line that says what happened and exit 75, so Rundeck shows a clear failure and a
 * retry (a new execution, a new upload) goes to the new leader.
 *
 * Not checked: the upload itself (`scp -t`, the file does not exist yet) and the
 * cleanup (`rm`, which must stay idempotent).
 */
const DISPATCH_BASENAME = /^\d+-.+-dispatch-script\.tmp(\.[A-Za-z0-9]+)?$/;

/** Whitespace-separated words of a command line, with simple '...' / "..." quotes removed. */
function words(commandLine: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(commandLine)) !== null) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

export function isDispatchScriptPath(word: string): boolean {
  return isAbsolute(word) && DISPATCH_BASENAME.test(basename(word));
}

/**
 * The dispatch script an exec names that is missing on this node, or null. Only the
 * first few words are looked at (the script, `chmod +x` or an interpreter before it).
 */
export function missingDispatchScript(commandLine: string, exists: (path: string) => boolean = existsSync): string | null {
  const w = words(commandLine.trim());
  const first = w[0] ? basename(w[0]) : '';
  if (first === 'scp' || first === 'rm') return null;
  const candidate = w.slice(0, 4).find(isDispatchScriptPath);
  if (!candidate) return null;
  return exists(candidate) ? null : candidate;
}

export function dispatchScriptMessage(node: string, path: string): string {
  return `execgate: ${path} does not exist on ${node}: the script was uploaded to another node before a failover; retry the step`;
}
