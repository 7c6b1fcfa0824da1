import { VERSION } from '../version.js';
import type { Verb } from './common.js';
import { overview, UsageError, verbUsage } from './usage.js';

export const HEADING = `execgate ${VERSION}: an SSH execution gateway`;

/** The help verb lists the others, so it is made with the registry it describes. */
export function helpVerb(verbs: () => Record<string, Verb>): Verb {
  const help: Verb = {
    summary: "list the verbs and exit codes, or show one verb's usage",
    usage: `execgate help                             the verbs and the exit codes (also: execgate --help, -h)
  execgate help VERB                        one verb's usage (also: execgate VERB --help, -h)`,
    options: {},
    async run(_flags, positionals) {
      const [name, ...extra] = positionals;
      if (name === undefined) return void process.stdout.write(overview(HEADING, verbs()));
      const verb = Object.hasOwn(verbs(), name) ? verbs()[name] : undefined;
      if (!verb) throw new UsageError(`unknown verb "${name}"`, verbUsage('help', help));
      if (extra.length) throw new UsageError(`help takes one verb, not ${positionals.length}`, verbUsage('help', help));
      process.stdout.write(verbUsage(name, verb));
    },
  };
  return help;
}
