import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditStartRecord } from '../../src/audit/auditLog.js';
import { recoverPreviousRun } from '../../src/audit/recovery.js';
import { bootId, processAlive, processCgroup, processStartTicks } from '../../src/audit/procIdentity.js';
import { until } from '../helpers/until.js';

function cgroupBase(): string | null {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' - ')[1]?.startsWith('cgroup2 '));
  const own = processCgroup(process.pid);
  if (!line || own === null) return null;
  const base = join(line.split(' ')[4]!, own);
  try {
    const probe = join(base, `execgate-probe-${process.pid}`);
    mkdirSync(probe);
    rmSync(probe, { recursive: true });
    return base;
  } catch {
    return null;
  }
}

/** A pid no process has now (a dead gateway's). */
function deadPid(): number {
  for (let p = 32000; p > 1000; p--) if (!existsSync(`/proc/${p}`)) return p;
  throw new Error('no free pid');
}

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function record(execId: string, gatewayPid: number, pid: number, cgroup: string | null, ticks: number | null): AuditStartRecord {
  return {
    time: new Date().toISOString(),
    event: 'start',
    node: 'n1',
    execId,
    gatewayPid,
    user: 'rundeck',
    account: 'rundeck',
    uid: 1000,
    keyFingerprint: 'SHA256:x',
    client: '127.0.0.1:1',
    command: 'sleep 300',
    rdJobExecId: null,
    token: null,
    start: new Date(Date.now() - 5000).toISOString(),
    pid,
    cgroup,
    bootId: bootId(),
    pidStartTicks: ticks,
  };
}

describe('startup recovery of a SIGKILLed gateway', () => {
  const base = cgroupBase();
  let dir: string;
  const children: ChildProcess[] = [];
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'execgate-recovery-'))));
  afterEach(() => {
    for (const c of children) if (c.pid && processAlive(c.pid)) process.kill(c.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!base)('kills a dead gateway\'s cgroups and verified pids, ends their records "lost", leaves strangers and live gateways alone', async () => {
    const gone = deadPid();
    // 1. A command in its cgroup that forked a setsid child (the case process groups miss).
    const parent = join(base!, `execgate-${gone}`);
    const cg = join(parent, `cmd-${gone}-1`);
    mkdirSync(cg, { recursive: true });
    const inCgroup = spawn('/bin/sh', ['-c', 'echo $$ > "$1"; exec /bin/sh -c "setsid sleep 301 & exec sleep 300"', 'x', join(cg, 'cgroup.procs')], { detached: true, stdio: 'ignore' });
    children.push(inCgroup);
    expect(await until(() => readFileSync(join(cg, 'cgroup.procs'), 'utf8').trim().split('\n').length === 2, 5000, 20)).not.toBeNull();
    // 2. A command without a cgroup (its own process group), still running.
    const noCgroup = spawn('sleep', ['302'], { detached: true, stdio: 'ignore' });
    children.push(noCgroup);
    // 3. A record whose pid now belongs to another process (start ticks differ): never killed.
    const stranger = spawn('sleep', ['303'], { detached: true, stdio: 'ignore' });
    children.push(stranger);
    // 4. A live gateway sharing the file: its command is left alone.
    const liveGateway = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', '/opt/x/dist/src/cli.js', 'serve'], { stdio: 'ignore' });
    children.push(liveGateway);
    await new Promise((r) => setTimeout(r, 100));

    const path = join(dir, 'audit.jsonl');
    const recs = [
      record('in-cgroup', gone, inCgroup.pid!, cg, processStartTicks(inCgroup.pid!)),
      record('no-cgroup', gone, noCgroup.pid!, null, processStartTicks(noCgroup.pid!)),
      record('stranger', gone, stranger.pid!, null, processStartTicks(stranger.pid!)! + 1),
      record('live-gw', liveGateway.pid!, liveGateway.pid!, null, processStartTicks(liveGateway.pid!)),
      record('ended', gone, 1, null, null),
    ];
    writeFileSync(path, [{ time: 't', event: 'open', reason: 'start', running: [] }, ...recs, { time: 't', event: 'end', execId: 'ended' }].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const audit = new AuditLog(path, { node: 'n1' });
    await audit.open();
    const report = await recoverPreviousRun(audit);
    await audit.close(0);

    expect(await until(() => !processAlive(inCgroup.pid!) && !processAlive(noCgroup.pid!), 5000, 20)).not.toBeNull();
    expect(existsSync(parent)).toBe(false);
    expect(processAlive(stranger.pid!)).toBe(true);
    expect(processAlive(liveGateway.pid!)).toBe(true);
    const ends = lines(path).filter((r) => r.event === 'end' && r.result === 'lost');
    expect(ends.map((r) => r.execId).sort()).toEqual(['in-cgroup', 'no-cgroup', 'stranger']);
    const byId = Object.fromEntries(ends.map((r) => [r.execId, r]));
    expect(byId['in-cgroup']).toMatchObject({ leftoverKilled: 2, exitStatus: null, gatewayPid: gone, account: 'rundeck', uid: 1000 });
    expect(byId['in-cgroup']!.reason).toBe(`gateway exited (pid ${gone}) while the command ran; 2 leftover processes killed at restart (pid ${process.pid})`);
    expect(byId['no-cgroup']).toMatchObject({ leftoverKilled: 1 });
    expect(byId['stranger']).toMatchObject({ leftoverKilled: 0 });
    expect(String(byId['stranger']!.reason)).toMatch(/is now another process, left alone/);
    // The new marker carries the live gateway's open command, so a later scan still sees it.
    const marker = lines(path).find((r) => r.event === 'open' && r.reason === 'start' && r.gatewayPid === process.pid);
    expect((marker!.running as AuditStartRecord[]).map((r) => r.execId)).toEqual(['live-gw']);
    expect(report.otherLive.map((r) => r.execId)).toEqual(['live-gw']);
    expect(report.killed).toBeGreaterThanOrEqual(3);
  });

  it('an unwritable audit log at start does not stop the gateway: recovery finishes, commands are refused', async () => {
    const path = join(dir, 'audit.jsonl');
    symlinkSync('/dev/full', path);
    const audit = new AuditLog(path, { probeMs: 60_000 });
    await audit.open();
    await expect(recoverPreviousRun(audit)).resolves.toMatchObject({ lost: [] });
    expect(audit.refusal()).toMatch(/ENOSPC/);
    await audit.close(0);
  });

  it('with nothing left behind it writes only the marker, and reads only back to the newest marker', async () => {
    const path = join(dir, 'audit.jsonl');
    const old = Array.from({ length: 20000 }, (_, i) => JSON.stringify({ time: 't', event: 'end', execId: `old${i}`, command: 'x'.repeat(100) })).join('\n');
    writeFileSync(path, `${old}\n${JSON.stringify({ time: 't', event: 'stop', reason: 'clean', running: [] })}\n${JSON.stringify({ time: 't', event: 'end', execId: 'y' })}\n`);
    const audit = new AuditLog(path);
    await audit.open();
    const report = await recoverPreviousRun(audit);
    await audit.close(0);
    expect(report.lost).toEqual([]);
    expect(report.bytesRead).toBeLessThanOrEqual(1024 * 1024 + 1); // one chunk, not the 2.5 MB file
  });
});
