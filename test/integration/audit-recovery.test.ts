import { describe, it, expect, afterEach } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, startTestGateway, waitForOutput, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { until } from '../helpers/until.js';
import { processAlive } from '../../src/audit/procIdentity.js';

/** Pids whose argv is exactly the given words (live, not zombies). */
function findProcess(argv: string[]): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const args = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (args.length === argv.length && args.every((a, i) => a === argv[i]) && processAlive(Number(e))) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Finding 10: a gateway killed with SIGKILL leaves a running command and no audit line. */
describe('SIGKILL of the gateway during a command', () => {
  let gw: TestGateway | null = null;
  let second: ChildProcess | null = null;
  let sleeper: number[] = [];
  afterEach(async () => {
    for (const pid of sleeper) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    if (second && second.exitCode === null && second.signalCode === null) {
      const exited = new Promise((r) => second!.once('exit', r));
      second.kill('SIGTERM');
      await exited;
    }
    await gw?.stop();
  });

  it('the restarted gateway kills the leftover command and ends its start record with result "lost"', async () => {
    gw = await startTestGateway();
    const secs = `300.${process.pid}${Date.now() % 1000}`; // an argv no other test has
    const client = ssh(gw.port, gw.keys.ed25519, `exec sleep ${secs}`);
    expect(await until(() => findProcess(['sleep', secs]).length === 1, 10_000)).not.toBeNull();
    sleeper = findProcess(['sleep', secs]);
    // The start record is written (and fdatasynced) right after the spawn: wait for it.
    expect(await until(() => gw!.auditLines().some((r) => r.event === 'start' && String(r.command).includes(secs)), 10_000)).not.toBeNull();
    const firstPid = gw.proc.pid!;
    const killed = new Promise((r) => gw!.proc.once('exit', r));
    gw.proc.kill('SIGKILL');
    await killed;
    await client; // the connection died with the gateway
    // The command outlived its gateway (re-parented): this is what the restart must clean up.
    expect(processAlive(sleeper[0]!)).toBe(true);

    second = spawn(process.execPath, [CLI, 'serve', '--config', join(gw.dir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    second.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    second.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitForOutput(second, () => out, /"listen":"127\.0\.0\.1:(\d+)"/);
    // Gone before the gateway listens (zombies awaiting a reaper count as gone).
    expect(processAlive(sleeper[0]!), out).toBe(false);

    const records = gw.auditLines();
    const start = records.find((r) => r.event === 'start' && String(r.command).includes(secs));
    expect(start, JSON.stringify(records)).toBeDefined();
    expect(start).toMatchObject({ gatewayPid: firstPid, user: 'root', account: 'root', uid: 0 });
    const end = records.find((r) => r.event === 'end' && r.execId === start!.execId);
    expect(end, JSON.stringify(records)).toMatchObject({ result: 'lost', exitStatus: null, gatewayPid: firstPid });
    console.log('lost record:', JSON.stringify(end));
    expect(Number(end!.leftoverKilled)).toBeGreaterThanOrEqual(1);
    expect(String(end!.reason)).toMatch(new RegExp(`^gateway exited \\(pid ${firstPid}\\) while the command ran; \\d+ leftover process(es)? killed at restart`));
    // The restart wrote its marker; the file stays one JSON object per line.
    expect(records.some((r) => r.event === 'open' && r.reason === 'start' && r.gatewayPid === second!.pid)).toBe(true);
  });
});
