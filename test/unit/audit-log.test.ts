import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { AuditLog } from '../../src/audit/auditLog.js';
import { endFields, startFields } from '../helpers/auditFixtures.js';
import { until } from '../helpers/until.js';
import { findOpenStarts } from '../../src/audit/tail.js';
import { processStartTicks } from '../../src/audit/procIdentity.js';

const lines = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

describe('audit log records', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'execgate-audit-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a start and an end record with the same execId, one JSON object per line', async () => {
    const log = new AuditLog(join(dir, 'audit.jsonl'), { node: 'n1' });
    await log.open();
    await log.start(startFields('a'));
    expect(log.runningRecords().map((r) => r.execId)).toEqual(['a']);
    await log.end(endFields('a', { leftoverKilled: 2 }));
    expect(log.runningRecords()).toEqual([]);
    await log.close(0);
    const [start, end, stop] = lines(log.path);
    expect(start).toMatchObject({ event: 'start', node: 'n1', execId: 'a', gatewayPid: process.pid, account: 'rundeck', uid: 1000, pid: process.pid, cgroup: null });
    expect(start!.pidStartTicks).toBe(processStartTicks(process.pid));
    expect(typeof start!.bootId).toBe('string');
    expect(end).toMatchObject({ event: 'end', execId: 'a', gatewayPid: process.pid, leftoverKilled: 2, account: 'rundeck', uid: 1000 });
    expect(stop).toMatchObject({ event: 'stop', reason: 'clean', running: [] });
  });
});

describe('audit log rotation', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'execgate-audit-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('after a rename (logrotate mv), the next line lands in a new file at the path, led by a marker listing what runs', async () => {
    const path = join(dir, 'audit.jsonl');
    const log = new AuditLog(path, { node: 'n1' });
    await log.open();
    await log.start(startFields('long'));
    await log.end(endFields('one'));
    renameSync(path, `${path}.1`);
    await log.end(endFields('two'));
    const old = lines(`${path}.1`);
    const now = lines(path);
    expect(old.map((r) => r.execId)).toEqual(['long', 'one']);
    expect(now[0]).toMatchObject({ event: 'open', reason: 'rotated', running: [{ execId: 'long' }] });
    expect(now[1]).toMatchObject({ event: 'end', execId: 'two' });
    // The start record sits in the rotated file, but the marker carries it: a restart finds it.
    expect([...(await findOpenStarts(path)).open.keys()]).toEqual(['long']);
    await log.close(0);
  });

  it('reopen() (SIGHUP) starts the new file at once, even with nothing to write', async () => {
    const path = join(dir, 'audit.jsonl');
    const log = new AuditLog(path);
    await log.open();
    await log.start(startFields('long'));
    renameSync(path, `${path}.1`);
    await log.reopen();
    expect(lines(path)).toMatchObject([{ event: 'open', reason: 'reopen', running: [{ execId: 'long' }] }]);
    // The renamed file is no longer written to.
    await log.end(endFields('long'));
    expect(lines(`${path}.1`).map((r) => r.event)).toEqual(['start']);
    expect(lines(path).map((r) => r.event)).toEqual(['open', 'end']);
    await log.close(0);
  });

  it('a write costs one stat of the path more than before (measured)', async () => {
    const path = join(dir, 'audit.jsonl');
    const log = new AuditLog(path);
    await log.open();
    const n = 300;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await log.end(endFields(`e${i}`));
    const perWrite = (performance.now() - t0) / n;
    const { stat } = await import('node:fs/promises');
    const t1 = performance.now();
    for (let i = 0; i < n; i++) await stat(path);
    const perStat = (performance.now() - t1) / n;
    console.log(`audit write (append + fdatasync + stat) ${perWrite.toFixed(3)} ms; the stat alone ${(perStat * 1000).toFixed(1)} µs`);
    expect(perStat).toBeLessThan(perWrite);
    await log.close(0);
  });
});

describe('audit log failure: fail closed, then recover', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'execgate-audit-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('ENOSPC (the path turned into /dev/full) -> refusal with the reason -> lines kept -> written once the path is writable again', async () => {
    const real = join(dir, 'real.jsonl');
    const path = join(dir, 'audit.jsonl');
    writeFileSync(real, '');
    symlinkSync(real, path);
    const log = new AuditLog(path, { probeMs: 50 });
    await log.open();
    await log.end(endFields('before'));
    expect(log.refusal()).toBeNull();
    // The kernel answers every write to /dev/full with ENOSPC.
    unlinkSync(path);
    symlinkSync('/dev/full', path);
    await expect(log.end(endFields('during-1'))).rejects.toThrow(/ENOSPC/);
    expect(log.refusal()).toMatch(/^the audit log .*audit\.jsonl cannot be written \(ENOSPC: .*commands are refused until it can be/);
    expect(log.error?.message).toMatch(/ENOSPC/);
    await expect(log.end(endFields('during-2'))).rejects.toThrow(/ENOSPC/);
    // Space again: the probe (not a new command: those are refused) finds out.
    const fresh = join(dir, 'fresh.jsonl');
    writeFileSync(fresh, '');
    unlinkSync(path);
    symlinkSync(fresh, path);
    await until(() => log.refusal() === null, 5000, 20);
    expect(log.refusal()).toBeNull();
    expect(log.error).toBeNull();
    const written = lines(fresh);
    // A new file at the path: the rotation marker, the kept lines, then the recovery marker.
    expect(written.map((r) => r.execId ?? r.reason)).toEqual(['rotated', 'during-1', 'during-2', 'write-recovered']);
    expect(written[3]).toMatchObject({ event: 'open', droppedRecords: 0 });
    expect(String(written[3]!.error)).toMatch(/ENOSPC/);
    expect(lines(real).map((r) => r.execId)).toEqual(['before']);
    await log.close(0);
  });

  it('counts lines it could not keep (maxPendingBytes)', async () => {
    const path = join(dir, 'audit.jsonl');
    symlinkSync('/dev/full', path);
    const log = new AuditLog(path, { probeMs: 50, maxPendingBytes: 1000 });
    await log.open();
    for (let i = 0; i < 10; i++) await log.end(endFields(`x${i}`)).catch(() => {});
    unlinkSync(path);
    await until(() => log.refusal() === null, 5000, 20);
    const written = lines(path);
    const marker = written.find((r) => r.reason === 'write-recovered')!;
    const kept = written.filter((r) => r.event === 'end').length;
    expect(kept).toBeGreaterThan(0);
    expect(kept + Number(marker.droppedRecords)).toBe(10);
    await log.close(0);
  });
});

describe('findOpenStarts (the backward scan)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'execgate-audit-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stops at the newest marker and finds exactly the starts without an end, for any history', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ id: fc.integer({ min: 0, max: 30 }), end: fc.boolean(), pad: fc.string({ unit: 'grapheme', maxLength: 40 }) }), { maxLength: 60 }), async (ops) => {
        const path = join(dir, 'audit.jsonl');
        const log = new AuditLog(path);
        await log.open();
        const expected = new Set<string>();
        const done = new Set<string>();
        await log.mark('open', 'start', []);
        for (const op of ops) {
          const id = `c${op.id}`;
          if (done.has(id)) continue;
          if (!expected.has(id)) {
            await log.start(startFields(id, { command: op.pad }));
            expected.add(id);
          } else if (op.end) {
            await log.end(endFields(id, { command: op.pad }));
            expected.delete(id);
            done.add(id);
          }
          if (op.id % 7 === 0) await log.mark('open', 'reopen');
        }
        await log.close(0).catch(() => {});
        // close() wrote a stop marker listing the open ones
        const found = await findOpenStarts(path);
        expect(new Set(found.open.keys())).toEqual(expected);
        expect(found.bounded).toBe(true);
        rmSync(path);
      }),
      { numRuns: 40 },
    );
  });

  it('reads chunk boundaries and multi-byte text correctly, skips torn lines, and falls back to path.1', async () => {
    const path = join(dir, 'audit.jsonl');
    const big = 'é'.repeat(700_000); // > 1 MiB in UTF-8: lines straddle chunks
    const start = (id: string) => JSON.stringify({ time: 't', event: 'start', execId: id, command: big, gatewayPid: 1 });
    writeFileSync(
      `${path}.1`,
      [JSON.stringify({ time: 't', event: 'open', running: [{ execId: 'carried', command: big }] }), start('a'), start('b'), '{"time":"t","event":"end","execId":"a"'].join('\n') + '\n',
    );
    // The current file: logrotate's fresh file, with an end for b and a torn line.
    writeFileSync(path, `{"time":"t","event":"end","execId":"b"}\n{"time":"t","event":"sta\n`);
    const found = await findOpenStarts(path);
    expect([...found.open.keys()].sort()).toEqual(['a', 'carried']);
    expect(found.open.get('carried')!.command).toBe(big);
    expect(found.files).toEqual([path, `${path}.1`]);
  });
});
