import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseOptions, USAGE, type Section } from './options.js';
import { cleanupAll, installSignalHandlers, removeDirLater } from './cleanup.js';
import { makeKeys } from './keys.js';
import { Results } from './results.js';
import { ensureLoginUser } from './servers/loginUser.js';
import { startExecgate, CLI, ROOT } from './servers/execgate.js';
import { startSshd } from './servers/sshd.js';
import type { BenchContext } from './context.js';
import { describeMachine } from './machine.js';
import { header, notes, table } from './report.js';
import { latency } from './scenarios/latency.js';
import { kex } from './scenarios/kex.js';
import { jsch, stopJschDrivers } from './scenarios/jsch.js';
import { throughput } from './scenarios/throughput.js';
import { scp } from './scenarios/scp.js';
import { parallel } from './scenarios/parallel.js';
import { jscrypto, stopJsExecgate } from './scenarios/jscrypto.js';
import { forward, stopForwardingPair } from './scenarios/forward.js';
import { concurrency } from './scenarios/concurrency.js';
import { idleFresh, memory, memoryAfterLoad } from './scenarios/memory.js';

const scenarios: Record<Section, (ctx: BenchContext, round: number) => Promise<void>> = {
  latency,
  kex,
  jsch,
  throughput,
  scp,
  parallel,
  jscrypto,
  forward,
  concurrency,
  memory,
};

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${CLI} is missing; run "npm run build" (npm run bench does)\n`);
    return 2;
  }
  installSignalHandlers();
  const started = Date.now();
  const log = (message: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
  const machine = describeMachine();

  const dir = mkdtempSync(join(tmpdir(), 'execgate-bench-'));
  chmodSync(dir, 0o755); // the login user reads nothing here, but sshd's children stat paths in it
  removeDirLater(dir);
  const keys = makeKeys(dir);
  const user = ensureLoginUser();
  mkdirSync(join(dir, 'execgate'));
  mkdirSync(join(dir, 'sshd'));
  const execgate = await startExecgate(join(dir, 'execgate'), keys, user);
  const sshd = await startSshd(join(dir, 'sshd'), keys, user);
  log(`execgate pid ${execgate.pid} on 127.0.0.1:${execgate.port}; sshd pid ${sshd.pid} on 127.0.0.1:${sshd.port}; login user ${user.name}`);

  const results = new Results();
  const failures: string[] = [];
  const fail = (section: string, message: string) => {
    const text = `section ${section}: ${message}`;
    log(`FAILED ${text}`);
    if (!failures.includes(text)) failures.push(text);
  };
  const ctx: BenchContext = { options, servers: [execgate, sshd], keys, user, results, dir, log, fail };
  const idleRss = await idleFresh(ctx);
  for (let round = 0; round < options.rounds; round++) {
    log(`round ${round + 1} of ${options.rounds}`);
    for (const section of options.sections) await scenarios[section](ctx, round);
  }
  await stopJschDrivers();
  await stopJsExecgate();
  await stopForwardingPair();
  if (options.sections.includes('memory')) await memoryAfterLoad(ctx, idleRss);

  const summary = results.summary();
  const seconds = (Date.now() - started) / 1000;
  const failed = failures.map((f) => `- ${f.split('\n')[0]}`).join('\n');
  const text = [header(machine, options, seconds), table(summary), notes(summary), failed && `FAILED:\n${failed}`].filter(Boolean).join('\n\n');
  process.stdout.write(`\n${text}\n`);

  const outDir = resolve(ROOT, options.outDir);
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outPath = join(outDir, `bench-${options.quick ? 'quick-' : ''}${stamp}.json`);
  const json = { when: new Date().toISOString(), seconds, machine: { ...machine, loadavgAtEnd: loadavg() }, options, loginUser: user.name, metrics: summary, failures, table: text };
  writeFileSync(outPath, JSON.stringify(json, null, 2) + '\n');
  writeFileSync(join(outDir, 'bench-latest.json'), JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`\nJSON: ${outPath}\n`);
  return failures.length > 0 ? 1 : 0;
}

main()
  .then(async (code) => {
    await cleanupAll();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    await cleanupAll();
    process.exit(1);
  });
