#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ExecgateError } from './errors.js';
import { EXIT_FAILURE, EXIT_USAGE } from './exitCodes.js';
import { VERSION } from './version.js';
import type { Verb } from './cli/common.js';
import { serve } from './cli/serve.js';
import { keygen } from './cli/keygen.js';
import { render } from './cli/render.js';
import { doctor } from './cli/doctor.js';
import { status } from './cli/status.js';
import { drain } from './cli/drain.js';
import { undrain } from './cli/undrain.js';

/** Each verb lives in src/cli/<verb>.ts; register it here. */
const verbs: Record<string, Verb> = { serve, keygen, status, drain, undrain, render, doctor };

/** Flags any verb may take; a verb ignores the ones it does not use. */
const options = {
  config: { type: 'string', short: 'c' },
  cluster: { type: 'string' },
  node: { type: 'string' },
  check: { type: 'boolean' },
  'state-dir': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'http-port': { type: 'string' },
  dir: { type: 'string' },
  out: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  wait: { type: 'boolean' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

function usage(): string {
  const lines = Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(10)} ${v.summary}\n    ${v.usage.replace(/\n/g, '\n  ')}`);
  return `execgate ${VERSION}: an SSH execution gateway\n\nUsage:\n${lines.join('\n')}\n`;
}

function fail(message: string, code = EXIT_USAGE): never {
  process.stderr.write(`execgate: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const [verbName, ...rest] = process.argv.slice(2);
  if (verbName === undefined || verbName === 'help' || verbName === '--help' || verbName === '-h') {
    process.stdout.write(usage());
    return;
  }
  if (verbName === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const verb = verbs[verbName];
  if (!verb) fail(`unknown command "${verbName}"; run "execgate help"`);
  const { values, positionals } = parseArgs({ args: rest, options, strict: true, allowPositionals: true });
  await verb.run(values, positionals);
}

main().catch((err: unknown) => {
  if (err instanceof ExecgateError) fail(err.message, EXIT_USAGE);
  if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) fail((err as Error).message);
  fail((err as Error).stack ?? String(err), EXIT_FAILURE);
});
