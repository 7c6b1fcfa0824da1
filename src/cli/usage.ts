import { parseArgs } from 'node:util';
import { EXIT_CHECK_FAILED, EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE } from '../exitCodes.js';
import type { Flags, Verb, VerbOptions } from './common.js';

/** -h and --help: every verb takes them on top of its own options. */
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/** What `execgate help` says about the CLI's own exit status. */
export const EXIT_CODE_LINES: ReadonlyArray<readonly [number, string]> = [
  [EXIT_OK, 'ok: done, or every check passed'],
  [EXIT_CHECK_FAILED, 'a check failed (doctor, or a peer status check)'],
  [EXIT_USAGE, 'usage or config: an unknown option, a missing argument, a config that cannot be used'],
  [EXIT_TEMPFAIL, 'tempfail (EX_TEMPFAIL): nothing ran, retry later or elsewhere; what an ssh client gets when a gateway refuses its command'],
];

/** The command line did not parse: the message, shown with the verb's usage. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The verb's usage (verbUsage), shown after the message. */
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type ParsedArgs = { help: true } | { help: false; flags: Flags; positionals: string[] };

/** Parses a verb's arguments against its own options (and -h/--help); unknown ones throw UsageError. */
export function parseVerbArgs(name: string, verb: Verb, args: string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...verb.options, ...HELP_OPTION }, strict: true, allowPositionals: true });
  } catch (err) {
    // node's hint about '--' does not apply: no verb takes a positional that starts with '-'.
    if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message.replace(/\. To specify a positional argument[^]*$/, ''), verbUsage(name, verb));
    throw err;
  }
  const { help, ...flags } = parsed.values as Flags;
  if (help === true) return { help: true };
  return { help: false, flags, positionals: parsed.positionals };
}

/** The options as one list, wrapped: `-c, --config VALUE  --check  -h, --help`. */
function optionList(options: VerbOptions): string {
  const all: VerbOptions = { ...options, ...HELP_OPTION };
  const items = Object.entries(all).map(([long, o]) => `${o.short ? `-${o.short}, ` : ''}--${long}${o.type === 'string' ? ' VALUE' : ''}`);
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    if (line && line.length + item.length >= 90) {
      lines.push(line);
      line = '';
    }
    line = line ? `${line}   ${item}` : item;
  }
  return [...lines, line].join('\n  ');
}

/** `execgate VERB --help`: the verb's summary, usage and options. */
export function verbUsage(name: string, verb: Verb): string {
  return `execgate ${name}: ${verb.summary}\n\nUsage:\n  ${verb.usage}\n\nOptions:\n  ${optionList(verb.options)}\n`;
}

/** `execgate help`: every verb in one line, then the exit codes. */
export function overview(heading: string, verbs: Record<string, Verb>): string {
  const width = Math.max(...Object.keys(verbs).map((n) => n.length)) + 2;
  const verbLines = Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(width)}${v.summary}`);
  const exitLines = EXIT_CODE_LINES.map(([code, what]) => `  ${String(code).padEnd(4)}${what}`);
  return (
    `${heading}\n\nUsage: execgate VERB [OPTIONS]   ("execgate VERB --help" or "execgate help VERB" for a verb's usage)\n\n` +
    `Verbs:\n${verbLines.join('\n')}\n\nExit codes:\n${exitLines.join('\n')}\n`
  );
}
