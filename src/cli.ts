#!/usr/bin/env node
import { ExecgateError } from './errors.js';
import { EXIT_FAILURE, EXIT_USAGE } from './exitCodes.js';
import type { Verb } from './cli/common.js';
import { serve } from './cli/serve.js';
import { keygen } from './cli/keygen.js';
import { certs } from './cli/certs.js';
import { etcdSetup } from './cli/etcdSetup.js';
import { render } from './cli/render.js';
import { doctor } from './cli/doctor.js';
import { status } from './cli/status.js';
import { drain } from './cli/drain.js';
import { undrain } from './cli/undrain.js';
import { version } from './cli/version.js';
import { HEADING, helpVerb } from './cli/help.js';
import { overview, parseVerbArgs, UsageError, verbUsage } from './cli/usage.js';

/** Each verb lives in src/cli/<verb>.ts with its own options; register it here. */
const verbs: Record<string, Verb> = { serve, keygen, certs, 'etcd-setup': etcdSetup, status, drain, undrain, render, doctor, help: helpVerb(() => verbs), version };

function fail(message: string, code = EXIT_USAGE): never {
  process.stderr.write(`execgate: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const [verbName, ...rest] = process.argv.slice(2);
  if (verbName === undefined || verbName === '--help' || verbName === '-h') {
    process.stdout.write(overview(HEADING, verbs));
    return;
  }
  const name = verbName === '--version' ? 'version' : verbName;
  const verb = Object.hasOwn(verbs, name) ? verbs[name] : undefined;
  if (!verb) fail(`unknown command "${verbName}"; run "execgate help"`);
  const args = parseVerbArgs(name, verb, rest);
  if (args.help) {
    process.stdout.write(verbUsage(name, verb));
    return;
  }
  await verb.run(args.flags, args.positionals);
}

main().catch((err: unknown) => {
  if (err instanceof ExecgateError) fail(err.message, EXIT_USAGE);
  // A command line that did not parse: the error, then the verb's usage (both on stderr).
  if (err instanceof UsageError) fail(`${err.message}\n\n${err.usage.trimEnd()}`);
  fail((err as Error).stack ?? String(err), EXIT_FAILURE);
});
