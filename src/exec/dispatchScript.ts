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

/**
 * The refusal, with why the copy is missing: the reason when this node knows it (it refused
 * the copy), else the general cause. "...before a failover; retry the step" stays one phrase
 * (the failover lab and people's alerts look for it).
 */
export function dispatchScriptMessage(node: string, path: string, why: string | null = null): string {
  const cause = why ? `no copy reached ${node}: ${why}` : 'the upload was not replicated to this node: peer transfer failed or the file was uploaded before this node joined';
  return `execgate: ${path} does not exist on ${node}: the script was uploaded to another node before a failover; retry the step (${cause})`;
}

/**
 * Rundeck's upload (`scp -t <path>`) or cleanup (`rm -f <path>`) of one dispatch script,
 * or null for any other command (a recursive or directory copy, several files, other options).
 */
export function dispatchScriptTransfer(commandLine: string): { op: 'upload' | 'remove' | 'mode'; path: string } | null {
  const [first, ...rest] = words(commandLine.trim());
  const program = first ? basename(first) : '';
  // Rundeck's `chmod +x <script>`: the copies must follow, or an exec that reaches
  // another node after a handover finds a script without its execute bit.
  if (program === 'chmod' && rest.length === 2 && /^(?:[ugoa]*[+=][rwxX]+|0?[0-7]{3})$/.test(rest[0]!) && isDispatchScriptPath(rest[1]!)) return { op: 'mode', path: rest[1]! };
  const options = rest.filter((w) => w.startsWith('-') && w !== '--');
  const operands = rest.filter((w) => !w.startsWith('-'));
  if (operands.length !== 1 || !isDispatchScriptPath(operands[0]!)) return null;
  const letters = options.map((o) => o.slice(1)).join('');
  if (program === 'scp' && letters.includes('t') && /^[tpvq]+$/.test(letters)) return { op: 'upload', path: operands[0]! };
  if (program === 'rm' && /^f*$/.test(letters)) return { op: 'remove', path: operands[0]! };
  return null;
}
