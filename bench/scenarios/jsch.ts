import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { inOrder, Budget } from '../context.js';
import { JschDriver, jschAvailable } from '../clients/jsch.js';
import { median } from '../stats.js';

const drivers = new Map<string, JschDriver>();
let execId = 1000;

/** A Rundeck script step over JSch: scp -t, chmod +x, run, rm -f — four connections. */
export async function jsch(ctx: BenchContext, round: number): Promise<void> {
  const missing = jschAvailable();
  if (missing) {
    ctx.log(`jsch: skipped (${missing})`);
    ctx.results.note('jsch.step.p50', `skipped: ${missing}`);
    return;
  }
  const script = join(ctx.dir, 'step.sh');
  writeFileSync(script, '#!/bin/sh\necho "step ran on $RD_NODE_NAME"\n');
  chmodSync(script, 0o755);
  for (const s of ctx.servers) if (!drivers.has(s.name)) drivers.set(s.name, new JschDriver(s, ctx.keys.clientRsaPem));
  const samples: Record<string, number[]> = { execgate: [], sshd: [] };
  const failures: Record<string, number> = { execgate: 0, sshd: 0 };
  if (round === 0) for (const s of ctx.servers) for (let w = 0; w < 5; w++) await drivers.get(s.name)!.step(script, execId++); // JIT warm-up
  const budget = new Budget('jsch', 5 * 60_000);
  for (let i = 0; i < ctx.options.jschSteps && !budget.exceeded; i++) {
    for (const s of inOrder(ctx.servers, i)) {
      const r = await drivers.get(s.name)!.step(script, execId++);
      if (r.ok) samples[s.name]!.push(r.ms);
      else {
        failures[s.name]!++;
        ctx.results.note('jsch.step.failures', `${s.name}: ${r.detail}`);
      }
    }
  }
  for (const s of ctx.servers) {
    ctx.results.add({ id: 'jsch.step.p50', label: 'JSch script step (4 connections), median', unit: 'ms', combine: 'median' }, s.name, median(samples[s.name]!));
    ctx.results.add({ id: 'jsch.step.failures', label: 'JSch script step, failures', unit: 'count', combine: 'sum', target: { kind: 'execgate==', value: 0 } }, s.name, failures[s.name]!);
  }
  ctx.log(`jsch step: execgate ${median(samples.execgate!).toFixed(1)} ms, sshd ${median(samples.sshd!).toFixed(1)} ms`);
}

export async function stopJschDrivers(): Promise<void> {
  for (const d of drivers.values()) await d.stop();
  drivers.clear();
}
