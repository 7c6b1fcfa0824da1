import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackValue, TrackFileWriter, type TrackInputs } from '../../src/leadership/keepalived/trackFile.js';
import type { Leadership, LeadershipState, Role } from '../../src/leadership/types.js';

const base: TrackInputs = { role: 'standby', self: 'gw1', steppingDown: false, stopping: false, unhealthy: false };

/** An in-memory leadership source whose state the test sets. */
class FakeLeadership implements Leadership {
  readonly kind = 'fake';
  private state: LeadershipState = { role: 'standby', token: null, since: 0 };
  private readonly listeners = new Set<(s: LeadershipState) => void>();
  current() {
    return this.state;
  }
  onChange(l: (s: LeadershipState) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(role: Role, leader?: string) {
    this.state = { role, token: role === 'leader' ? 7n : null, since: Date.now(), ...(leader ? { leader } : {}) };
    for (const l of this.listeners) l(this.state);
  }
  async start() {}
  async stop() {}
  async release() {}
  async rejoin() {}
}

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
    const source = new FakeLeadership();
    const w = new TrackFileWriter({ path, node: 'gw1', stepDownHoldMs: 0 });
    w.follow(source);
    expect(read(path)).toBe('0');
    source.set('leader', 'gw1');
    expect(read(path)).toBe('100');
    source.set('draining', 'gw1');
    expect(read(path)).toBe('100');
    source.set('standby'); // released: nobody else known yet
    expect(read(path)).toBe('-254');
    source.set('standby', 'gw2'); // the other node took over
    expect(read(path)).toBe('0');
    source.set('leader', 'gw1');
    source.set('fenced');
    expect(read(path)).toBe('-254');
    source.set('standby'); // campaigning again, new leader not known yet
    expect(read(path)).toBe('-254');
    source.set('fenced', 'gw3');
    expect(read(path)).toBe('0');
    w.setUnhealthy(true);
    expect(read(path)).toBe('-254');
    w.setUnhealthy(false);
    expect(read(path)).toBe('0');
    w.stop();
    expect(read(path)).toBe('-254');
    source.set('leader', 'gw1'); // no longer followed after stop
    expect(read(path)).toBe('-254');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['keepalived.track']); // temp file renamed away
  });

  it('a standby that stepped down returns to 0 after the hold even if no leader is seen', async () => {
    dir = mkdtempSync(join(tmpdir(), 'eg-track-'));
    const path = join(dir, 'keepalived.track');
    const source = new FakeLeadership();
    const w = new TrackFileWriter({ path, node: 'gw1', stepDownHoldMs: 100 });
    w.follow(source);
    source.set('leader', 'gw1');
    source.set('standby');
    expect(read(path)).toBe('-254');
    await new Promise((r) => setTimeout(r, 400));
    expect(read(path)).toBe('0');
    // a fenced node does not time out
    source.set('leader', 'gw1');
    source.set('fenced');
    await new Promise((r) => setTimeout(r, 400));
    expect(read(path)).toBe('-254');
    w.stop();
  });
});
