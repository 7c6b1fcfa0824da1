import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { Budget } from '../context.js';
import { opensshExec, runProcess } from '../clients/openssh.js';
import { ssh2Exec } from '../clients/ssh2client.js';
import type { BenchServer } from '../servers/types.js';
import { percentile } from '../stats.js';
import { registerPostQuantumKex } from '../../src/ssh/kex/register.js';

type Runner = (server: BenchServer) => Promise<{ ms: number; ok: boolean; detail: string }>;

const MLKEM = 'mlkem768x25519-sha256';
// The @openssh.com name: sshd 9.2 knows no other (the bare name arrived in 9.9).
const SNTRUP = 'sntrup761x25519-sha512@openssh.com';
const X25519 = 'curve25519-sha256';

/** The private OpenSSH 10 client (.ci/install-openssh10); the system's 9.2 has no ML-KEM. */
function openssh10(): string | null {
  const ssh = join(process.env.EXECGATE_OPENSSH10_DIR ?? '/opt/execgate-test/openssh-10', 'usr/bin/ssh');
  return existsSync(ssh) ? ssh : null;
}

/** Which kex names a server offers, read from `ssh -Q`-style probing: a connect with only that kex. */
async function offers(ssh: string, server: BenchServer, key: string, kex: string): Promise<boolean> {
  const r = await runProcess(
    ssh,
    [
      '-F',
      '/dev/null',
      '-i',
      key,
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      `KexAlgorithms=${kex}`,
      '-p',
      String(server.port),
      `${server.user}@127.0.0.1`,
      'true',
    ],
    30_000,
  );
  return r.code === 0;
}

/**
 * connect + auth + exec `true` + close per key exchange: what the post-quantum kex
 * costs. OpenSSH 10 client: mlkem768x25519 and curve25519 against both servers,
 * sntrup761x25519 against sshd (execgate has no sntrup761); the in-process ssh2 client
 * with mlkem768x25519 and curve25519 against execgate. A server that lacks a kex
 * shows n/a (Debian 12's sshd 9.2 has no ML-KEM).
 */
export async function kex(ctx: BenchContext, round: number): Promise<void> {
  const { keys, options, results } = ctx;
  const ssh10 = openssh10();
  if (!ssh10) {
    results.note('kex.openssh10', 'OpenSSH 10 client missing: run `sudo bash .ci/install-openssh10`; only the ssh2 rows ran');
  }
  registerPostQuantumKex();
  const clients: Array<{ id: string; label: string; run: Runner; kex: string }> = [
    ...(ssh10
      ? [MLKEM, X25519, SNTRUP].map((k) => ({
          id: `openssh10-${k.split('-')[0]}`,
          label: `OpenSSH 10 client, kex ${k.split('-')[0]}`,
          kex: k,
          run: (s: BenchServer) => opensshExec(s, keys.clientEd25519, 'true', ['-o', `KexAlgorithms=${k}`], ssh10),
        }))
      : []),
    ...[MLKEM, X25519].map((k) => ({
      id: `ssh2-${k.split('-')[0]}`,
      label: `in-process ssh2 client, kex ${k.split('-')[0]}`,
      kex: k,
      run: (s: BenchServer) => (s.name === 'execgate' ? ssh2Exec(s, keys.clientEd25519, 'true', [k]) : Promise.resolve({ ms: Number.NaN, ok: false, detail: 'skipped' })),
    })),
  ];
  // Every (client, server) pair that works, sampled interleaved (one of each per
  // iteration, in rotating order) so that all of them see the same machine load.
  const pairs: Array<{ client: (typeof clients)[number]; server: BenchServer }> = [];
  for (const client of clients)
    for (const s of ctx.servers) {
      if (client.id.startsWith('ssh2-') && s.name !== 'execgate') continue;
      if (ssh10 && client.id.startsWith('openssh10-') && !(await offers(ssh10, s, keys.clientEd25519, client.kex))) {
        results.note(`kex.${client.id}.p50`, `${s.name} does not offer ${client.kex}`);
        continue;
      }
      pairs.push({ client, server: s });
    }
  const samples = new Map(pairs.map((p) => [p, [] as number[]]));
  if (round === 0) for (const p of pairs) for (let w = 0; w < 3; w++) await p.client.run(p.server);
  const budget = new Budget('kex', 5 * 60_000);
  for (let i = 0; i < options.latencyCount && !budget.exceeded; i++) {
    for (let j = 0; j < pairs.length; j++) {
      const p = pairs[(i + j) % pairs.length]!;
      const r = await p.client.run(p.server);
      if (r.ok) samples.get(p)!.push(r.ms);
      else results.note(`kex.${p.client.id}.p50`, `${p.server.name}: ${r.detail}`);
    }
  }
  if (budget.exceeded) results.note('kex.budget', 'stopped early: time budget exceeded');
  const p50: Record<string, Record<string, number>> = {};
  for (const client of clients) {
    p50[client.id] = {};
    for (const name of ['execgate', 'sshd'] as const) {
      const pair = pairs.find((p) => p.client === client && p.server.name === name);
      const value = pair ? percentile(samples.get(pair)!, 50) : Number.NaN;
      p50[client.id]![name] = value;
      results.add({ id: `kex.${client.id}.p50`, label: `connect+exec true, ${client.label}, p50`, unit: 'ms', combine: 'median' }, name, value);
    }
    ctx.log(`kex ${client.id}: execgate p50 ${p50[client.id]!.execgate!.toFixed(1)} ms, sshd p50 ${p50[client.id]!.sshd!.toFixed(1)} ms`);
  }
  // What the post-quantum kex adds to a connection, measured with the same client.
  for (const [pq, classical, label] of [
    ['openssh10-mlkem768x25519', 'openssh10-curve25519', 'OpenSSH 10 client'],
    ['ssh2-mlkem768x25519', 'ssh2-curve25519', 'in-process ssh2 client'],
  ] as const) {
    if (!p50[pq] || !p50[classical]) continue;
    results.add(
      { id: `kex.${pq}.added`, label: `mlkem768x25519 minus curve25519, ${label}, p50`, unit: 'ms', combine: 'median', target: { kind: 'execgate<=', value: 5 } },
      'execgate',
      p50[pq]!.execgate! - p50[classical]!.execgate!,
    );
    results.add({ id: `kex.${pq}.added`, label: '', unit: 'ms', combine: 'median' }, 'sshd', p50[pq]!.sshd! - p50[classical]!.sshd!);
  }
}
