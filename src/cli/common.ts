import { errors } from '../errors.js';

export type Flags = Record<string, string | boolean | undefined>;

/** A verb's options as node:util parseArgs takes them; -h/--help is added to every verb. */
export type VerbOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** One CLI verb: its own module under src/cli/, registered in src/cli.ts. */
export interface Verb {
  summary: string;
  usage: string;
  /** The options it takes: any other is a usage error (exit 2) that shows `usage`. */
  options: VerbOptions;
  run(flags: Flags, positionals: string[]): Promise<void>;
}

export function stringFlag(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function requireFlag(flags: Flags, name: string, verb: string): string {
  const v = stringFlag(flags, name);
  if (v === undefined) throw errors.flagMissing(verb, name);
  return v;
}
