#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import { relative } from 'node:path';
import { loadConfigFile, parseConfig } from './config/load.js';
import { prepareEmbeddedSetup } from './bootstrap/stateDir.js';
import { generateHostKeys } from './ssh/hostKeys.js';
import { startGateway } from './gateway.js';
import { ExecgateError } from './errors.js';
import { VERSION } from './version.js';

const USAGE = `execgate ${VERSION}: an SSH execution gateway

Usage:
  execgate serve                      single node with embedded defaults (state in ./.execgate)
  execgate serve --config FILE        serve with a YAML config
  execgate serve --config FILE --check  validate the config (and its keys) and exit
  execgate keygen --dir DIR [--force] write host keys (ed25519 + RSA 3072) into DIR

Options for the embedded defaults: --state-dir DIR, --host ADDR, --port N`;

function fail(message: string, code = 2): never {
  process.stderr.write(`execgate: ${message}\n`);
  process.exit(code);
}

async function serve(values: Record<string, string | boolean | undefined>): Promise<void> {
  let config;
  let hint: string | null = null;
  if (typeof values.config === 'string') {
    config = loadConfigFile(values.config);
  } else {
    const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
    const port = typeof values.port === 'string' ? Number(values.port) : 2222;
    const stateDir = typeof values['state-dir'] === 'string' ? values['state-dir'] : process.env.EXECGATE_STATE_DIR ?? '.execgate';
    const setup = prepareEmbeddedSetup(stateDir, host, port);
    config = parseConfig(setup.config, 'embedded defaults', setup.stateDir);
    const rel = (p: string) => (relative(process.cwd(), p).startsWith('..') ? p : relative(process.cwd(), p));
    hint =
      `execgate ${VERSION}: single-node gateway on ${host}:${port}, state in ${rel(setup.stateDir)}\n` +
      `Try it:\n  ssh -i ${rel(setup.clientKey)} -o IdentitiesOnly=yes -o UserKnownHostsFile=${rel(setup.knownHosts)} ` +
      `-p ${port} ${userInfo().username}@${host} 'echo hello from $EXECGATE_NODE'\n`;
  }
  if (values.check) {
    const { loadHostKeys } = await import('./ssh/hostKeys.js');
    loadHostKeys(config.hostKeys);
    process.stdout.write('config OK\n');
    return;
  }
  const gateway = await startGateway(config);
  if (hint) process.stderr.write(hint);
  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) process.exit(1);
    void gateway.stop(signal).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

async function main(): Promise<void> {
  const [verb, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      check: { type: 'boolean' },
      'state-dir': { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      dir: { type: 'string' },
      force: { type: 'boolean' },
    },
    strict: true,
  });
  switch (verb) {
    case 'serve':
      return serve(values);
    case 'keygen': {
      if (typeof values.dir !== 'string') fail('keygen needs --dir DIR');
      for (const path of generateHostKeys(values.dir, values.force === true)) process.stdout.write(`${path}\n`);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE + '\n');
      return;
    default:
      fail(`unknown command "${verb}"\n${USAGE}`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ExecgateError) fail(err.message, 2);
  if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) fail(err.message);
  fail((err as Error).stack ?? String(err), 1);
});
