import { errors } from '../errors.js';

export type Flags = Record<string, string | boolean | undefined>;

/** One CLI verb: its own module under src/cli/, registered in src/cli.ts. */
export interface Verb {
  summary: string;
  usage: string;
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
