import { describe, it, expect, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { CLI } from '../helpers/gateway.js';
import { EXIT_CHECK_FAILED, EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE } from '../../src/exitCodes.js';

/** Every verb src/cli.ts dispatches; the overview test below fails when one is added without being listed here. */
const VERBS = ['serve', 'keygen', 'certs', 'etcd-setup', 'status', 'drain', 'undrain', 'render', 'doctor', 'help', 'version'];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnCli(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 }, (_err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
  });
}

/** Every command line the tests look at, run beforehand four at a time (each CLI start loads the whole gateway). */
const COMMAND_LINES: string[][] = [
  ...VERBS.flatMap((verb) => [
    [verb, '--help'],
    [verb, '-h'],
    [verb, '--no-such-option'],
  ]),
  ['doctor', '--cluster'],
  [],
  ['help'],
  ['--help'],
  ['-h'],
  ['help', 'render'],
  ['render', '--help'],
  ['help', 'nope'],
  ['nope'],
  ['version'],
  ['--version'],
];
const results = new Map<string, Result>();

function cli(...args: string[]): Result {
  const r = results.get(JSON.stringify(args));
  if (!r) throw new Error(`add ${JSON.stringify(args)} to COMMAND_LINES`);
  return r;
}

describe('the built CLI: help, usage and exit codes', () => {
  beforeAll(async () => {
    const queue = [...COMMAND_LINES];
    const worker = async () => {
      for (let args = queue.shift(); args; args = queue.shift()) results.set(JSON.stringify(args), await spawnCli(args));
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }, 300_000);

  it.each(
    VERBS.flatMap((verb) => [
      [verb, '--help'],
      [verb, '-h'],
    ]),
  )('execgate %s %s prints its usage on stdout and exits 0', (verb, flag) => {
    const r = cli(verb, flag);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toMatch(new RegExp(`^execgate ${verb}: `));
    expect(r.stdout).toContain('Usage');
    expect(r.stdout).toContain(`execgate ${verb}`);
    expect(r.stdout).toContain('-h, --help');
  });

  it.each(VERBS)('execgate %s --no-such-option: the error and the usage on stderr, exit 2', (verb) => {
    const r = cli(verb, '--no-such-option');
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^execgate: Unknown option '--no-such-option'\n/);
    expect(r.stderr).toContain('Usage');
    expect(r.stderr).toContain(`execgate ${verb}`);
  });

  it('an option without its value is a usage error too', () => {
    const r = cli('doctor', '--cluster');
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toMatch(/^execgate: Option '--cluster <value>' argument missing\n/);
    expect(r.stderr).toContain('execgate doctor --cluster FILE');
  });

  it.each(['', 'help', '--help', '-h'])('execgate %s lists every verb and the exit codes', (arg) => {
    const r = arg ? cli(arg) : cli();
    expect(r.code).toBe(EXIT_OK);
    expect(r.stderr).toBe('');
    const verbs = r.stdout
      .split('\nVerbs:\n')[1]!
      .split('\n\n')[0]!
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0]);
    expect(verbs.sort()).toEqual([...VERBS].sort());
    const codes = r.stdout.split('\nExit codes:\n')[1]!;
    for (const [code, word] of [
      [EXIT_OK, 'ok'],
      [EXIT_CHECK_FAILED, 'check failed'],
      [EXIT_USAGE, 'usage'],
      [EXIT_TEMPFAIL, 'tempfail'],
    ] as const) {
      expect(codes).toMatch(new RegExp(`^  ${code}\\s+.*${word}`, 'm'));
    }
  });

  it("execgate help VERB is that verb's usage; an unknown verb is a usage error", () => {
    expect(cli('help', 'render').stdout).toBe(cli('render', '--help').stdout);
    const unknown = cli('help', 'nope');
    expect(unknown.code).toBe(EXIT_USAGE);
    expect(unknown.stderr).toMatch(/^execgate: unknown verb "nope"\n[^]*Usage/);
    const top = cli('nope');
    expect(top.code).toBe(EXIT_USAGE);
    expect(top.stderr).toContain('run "execgate help"');
  });

  it('execgate version and --version print the version', () => {
    const v = cli('version');
    expect(v.code).toBe(EXIT_OK);
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+\S*\n$/);
    expect(cli('--version').stdout).toBe(v.stdout);
  });
});
