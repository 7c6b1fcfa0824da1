import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackValue, TrackFileWriter, type TrackInputs } from '../../src/leadership/keepalived/trackFile.js';
import type { Role } from '../../src/leadership/types.js';
import { FakeLeadership } from '../helpers/fakeLeadership.js';

const base: TrackInputs = { role: 'standby', self: 'gw1', steppingDown: false, stopping: false, unhealthy: false };

describe('trackValue', () => {
  it('maps roles to the keepalived contract', () => {
    expect(trackValue({ ...base, role: 'leader' })).toBe(100);
    expect(trackValue({ ...base, role: 'draining' })).toBe(100);
    expect(trackValue({ ...base, role: 'standby' })).toBe(0);
    expect(trackValue({ ...base, role: 'fenced' })).toBe(-254);
  });
  it('50 for the standby next in line and -50 behind it, so keepalived moves the VIP where the lease will go', () => {
    expect(trackValue({ ...base, role: 'standby', leader: 'gw2', successor: true })).toBe(50);
    expect(trackValue({ ...base, role: 'standby', leader: 'gw2', successor: true, unhealthy: true })).toBe(-254);
    expect(trackValue({ ...base, role: 'standby', leader: 'gw2', successor: false })).toBe(-50); // behind the next in line
    expect(trackValue({ ...base, role: 'standby', leader: 'gw2' })).toBe(0); // vrrp: no order
  });
  it('-254 while stepping down, back to 0 once another node leads', () => {
    expect(trackValue({ ...base, steppingDown: true })).toBe(-254);
    expect(trackValue({ ...base, steppingDown: true, leader: 'gw1' })).toBe(-254);
    expect(trackValue({ ...base, steppingDown: true, leader: 'gw2' })).toBe(0);
    expect(trackValue({ ...base, role: 'fenced', leader: 'gw2' })).toBe(0);
  });
  it('unhealthy and stopping win over every role', () => {
    for (const role of ['leader', 'draining', 'standby', 'fenced'] as Role[]) {
      expect(trackValue({ ...base, role, unhealthy: true })).toBe(-254);
      expect(trackValue({ ...base, role, stopping: true, leader: 'gw2' })).toBe(-254);
    }
  });
});

describe('TrackFileWriter', () => {
  let dir = '';
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));
  const read = (p: string) => readFileSync(p, 'utf8').trim();

  it('follows a leadership source through a whole life', async () => {
    dir = mkdtempSync(join(tmpdir(), 'eg-track-'));
    const path = join(dir, 'sub', 'keepalived.track');
    const source = new FakeLeadership('gw1', { role: 'standby', token: null, leader: undefined, since: 0 });
    const w = new TrackFileWriter({ path, node: 'gw1', stepDownHoldMs: 0 });
    w.follow(source);
    expect(read(path)).toBe('0');
    source.set({ role: 'leader', token: 7n, leader: 'gw1' });
    expect(read(path)).toBe('100');
    source.set({ role: 'draining', token: null, leader: 'gw1' });
    expect(read(path)).toBe('100');
    source.set({ role: 'standby', token: null }); // released: nobody else known yet
    expect(read(path)).toBe('-254');
    source.set({ role: 'standby', token: null, leader: 'gw2' }); // the other node took over
    expect(read(path)).toBe('0');
    source.set({ role: 'leader', token: 7n, leader: 'gw1' });
    source.set({ role: 'fenced', token: null });
    expect(read(path)).toBe('-254');
    source.set({ role: 'standby', token: null }); // campaigning again, new leader not known yet
    expect(read(path)).toBe('-254');
    source.set({ role: 'fenced', token: null, leader: 'gw3' });
    expect(read(path)).toBe('0');
    w.setUnhealthy(true);
    expect(read(path)).toBe('-254');
    w.setUnhealthy(false);
    expect(read(path)).toBe('0');
    w.stop();
    expect(read(path)).toBe('-254');
    source.set({ role: 'leader', token: 7n, leader: 'gw1' }); // no longer followed after stop
    expect(read(path)).toBe('-254');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['keepalived.track']); // temp file renamed away
  });

  it('a standby that stepped down returns to 0 after the hold even if no leader is seen', async () => {
    dir = mkdtempSync(join(tmpdir(), 'eg-track-'));
    const path = join(dir, 'keepalived.track');
    const source = new FakeLeadership('gw1', { role: 'standby', token: null, leader: undefined, since: 0 });
    const w = new TrackFileWriter({ path, node: 'gw1', stepDownHoldMs: 100 });
    w.follow(source);
    source.set({ role: 'leader', token: 7n, leader: 'gw1' });
    source.set({ role: 'standby', token: null });
    expect(read(path)).toBe('-254');
    await new Promise((r) => setTimeout(r, 400));
    expect(read(path)).toBe('0');
    // a fenced node does not time out
    source.set({ role: 'leader', token: 7n, leader: 'gw1' });
    source.set({ role: 'fenced', token: null });
    await new Promise((r) => setTimeout(r, 400));
    expect(read(path)).toBe('-254');
    w.stop();
  });
});
