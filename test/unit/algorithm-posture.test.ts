import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NegotiatedAlgorithms } from 'ssh2';
import { AlgorithmPosture, POSTURE_FILE } from '../../src/ssh/algorithmPosture.js';
import { BUCKET_MS, MAX_CLIENTS, WINDOW_MS, cleanIdent } from '../../src/ssh/postureRecord.js';
import { algorithmProfile, algorithmTiers } from '../../src/ssh/algorithms.js';
import { postureRows } from '../../src/doctor/doctor.js';
import type { PeerAnswer } from '../../src/doctor/peers.js';

const HOUR = 3600_000;
const T0 = Date.parse('2026-12-01T10:00:00Z');

/** What JSch 0.1.55 negotiates against the legacy profile (measured in test/integration/algorithm-posture.test.ts). */
const JSCH: NegotiatedAlgorithms = {
  kex: 'ecdh-sha2-nistp256',
  serverHostKey: 'ssh-rsa',
  cs: { cipher: 'aes128-ctr', mac: 'hmac-sha1', compress: 'none', lang: '' },
  sc: { cipher: 'aes128-ctr', mac: 'hmac-sha1', compress: 'none', lang: '' },
} as NegotiatedAlgorithms;

/** OpenSSH 9.2 with its defaults: AEAD cipher, so ssh2 reports the MAC as "". */
const OPENSSH: NegotiatedAlgorithms = {
  kex: 'curve25519-sha256',
  serverHostKey: 'ssh-ed25519',
  cs: { cipher: 'aes128-gcm@openssh.com', mac: '', compress: 'none', lang: '' },
  sc: { cipher: 'aes128-gcm@openssh.com', mac: '', compress: 'none', lang: '' },
} as NegotiatedAlgorithms;

class Clock {
  t = T0;
  now = () => this.t;
  advance(ms: number) {
    this.t += ms;
  }
}

class MemoryLog {
  lines: Array<{ level: string; msg: string }> = [];
  info(_o: object, msg: string) {
    this.lines.push({ level: 'info', msg });
  }
  warn(_o: object, msg: string) {
    this.lines.push({ level: 'warn', msg });
  }
  warnings() {
    return this.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
  }
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'execgate-posture-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function posture(opts: { path?: string | null; clock?: Clock; log?: MemoryLog; legacyOffered?: boolean } = {}) {
  const clock = opts.clock ?? new Clock();
  const log = opts.log ?? new MemoryLog();
  const p = new AlgorithmPosture({ path: opts.path ?? null, legacyOffered: opts.legacyOffered ?? true, log, now: clock.now });
  return { p, clock, log };
}

describe('algorithm tiers', () => {
  it('legacy is exactly what auth.allowSshRsaSha1: false removes; compat stays in both profiles', () => {
    const { legacy, compat } = algorithmTiers();
    expect(legacy.kex).toEqual(['ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521']);
    expect(legacy['host-key']).toEqual(expect.arrayContaining(['ssh-rsa', 'ecdsa-sha2-nistp256']));
    expect(legacy['host-key']).not.toContain('rsa-sha2-256');
    expect(legacy.mac).toEqual(['hmac-sha1']);
    expect(legacy['user-auth']).toEqual(['ssh-rsa']);
    expect(legacy.cipher).toEqual([]);
    expect(compat.cipher).toEqual(['aes128-ctr', 'aes192-ctr', 'aes256-ctr']);
    expect(compat.mac).toEqual(['hmac-sha2-256', 'hmac-sha2-512']);
  });
});

describe('AlgorithmPosture: the 24 h window', () => {
  it('names the legacy algorithms of a JSch handshake with counts, last time and client; nothing for OpenSSH', () => {
    const { p: q, clock: c2 } = posture();
    c2.advance(25 * HOUR); // the record (begun at construction) is older than the window
    expect(q.report()).toMatchObject({ verdict: 'unused', legacy: [], compat: [] });
    q.recordHandshake(OPENSSH, 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3');
    q.recordUserAuth('ssh-ed25519', 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3');
    const clean = q.report();
    expect(clean.verdict).toBe('unused');
    expect(clean.legacy).toEqual([]);
    expect(clean.summary).toBe("no legacy algorithm negotiated in the last 24 h (record since 2026-12-01T10:00Z): safe to set auth.allowSshRsaSha1: false as far as this node's clients go");

    for (let i = 0; i < 12; i++) q.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54');
    q.recordUserAuth('ssh-rsa', 'SSH-2.0-JSCH-0.1.54');
    const r = q.report();
    expect(r.verdict).toBe('in-use');
    expect(r.legacy.map((u) => `${u.kind} ${u.algorithm} ${u.handshakes24h}`).sort()).toEqual(['host-key ssh-rsa 12', 'kex ecdh-sha2-nistp256 12', 'mac hmac-sha1 12', 'user-auth ssh-rsa 1']);
    expect(r.compat.map((u) => `${u.kind} ${u.algorithm} ${u.handshakes24h}`)).toEqual(['cipher aes128-ctr 12']);
    expect(r.legacy[0]!.clients).toEqual(['SSH-2.0-JSCH-0.1.54']);
    expect(r.summary).toContain('ecdh-sha2-nistp256 kex (12 handshakes, last 2026-12-02T11:00Z, client SSH-2.0-JSCH-0.1.54)');
    expect(r.summary).toContain('ssh-rsa user signature (1 handshake, last 2026-12-02T11:00Z, client SSH-2.0-JSCH-0.1.54)');
    expect(r.summary).toMatch(/^legacy algorithms negotiated in the last 24 h: .*; keep auth.allowSshRsaSha1: true until these clients are upgraded$/);
  });

  it('forgets a use after 24 h: the count by 10-minute buckets, the verdict by the exact last time', () => {
    const { p, clock } = posture();
    p.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54'); // T0
    clock.advance(23 * HOUR);
    p.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54'); // T0 + 23 h
    expect(p.report().legacy.find((u) => u.kind === 'kex')!.handshakes24h).toBe(2);
    clock.advance(HOUR + BUCKET_MS); // T0 + 24 h 10 min: the first has left the window
    const r = p.report();
    expect(r.verdict).toBe('in-use');
    expect(r.legacy.find((u) => u.kind === 'kex')).toMatchObject({ handshakes24h: 1, lastSeen: new Date(T0 + 23 * HOUR).toISOString() });
    clock.advance(23 * HOUR - BUCKET_MS - 1); // 1 ms before 24 h after the last use
    expect(p.report().verdict).toBe('in-use');
    clock.advance(1);
    const after = p.report();
    expect(after.verdict).toBe('unused');
    expect(after.legacy).toEqual([]);
  });

  it('says honestly when the record is younger than 24 h', () => {
    const { p, clock } = posture();
    clock.advance(1.5 * HOUR);
    p.recordHandshake(OPENSSH, 'SSH-2.0-OpenSSH_9.2p1');
    const r = p.report();
    expect(r).toMatchObject({ verdict: 'unused-short-record', coversWindow: false, since: new Date(T0).toISOString() });
    expect(r.summary).toBe(
      'no legacy algorithm negotiated since 2026-12-01T10:00Z, but this record covers only 1.5 h of the last 24 h: not yet evidence that auth.allowSshRsaSha1: false is safe (ask again after 2026-12-02T10:00Z)',
    );
  });

  it('says when legacy algorithms are not offered', () => {
    const { p } = posture({ legacyOffered: false });
    expect(p.report()).toMatchObject({ verdict: 'not-offered', summary: 'legacy algorithms are not offered (auth.allowSshRsaSha1: false) and none was negotiated in the last 24 h' });
  });

  it('keeps the last few distinct clients per algorithm, most recent first, printable and bounded', () => {
    const { p, clock } = posture();
    for (let i = 1; i <= MAX_CLIENTS + 2; i++) {
      clock.advance(1000);
      p.recordHandshake(JSCH, `SSH-2.0-JSCH-0.1.${i}`);
    }
    clock.advance(1000);
    p.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.4'); // seen again: moves to the front, no duplicate
    const kex = p.report().legacy.find((u) => u.kind === 'kex')!;
    expect(kex.clients).toEqual(['SSH-2.0-JSCH-0.1.4', 'SSH-2.0-JSCH-0.1.7', 'SSH-2.0-JSCH-0.1.6', 'SSH-2.0-JSCH-0.1.5', 'SSH-2.0-JSCH-0.1.3']);
    expect(kex.handshakes24h).toBe(MAX_CLIENTS + 3);
    expect(cleanIdent('SSH-2.0-evil\u001b[31m\u00ff' + 'x'.repeat(300))).toMatch(/^SSH-2\.0-evil\?\[31m\?x+$/);
    expect(cleanIdent('x'.repeat(300))).toHaveLength(128);
  });
});

describe('AlgorithmPosture: persistence', () => {
  it('round-trips through the state directory: counts, last times, clients and the record start survive a restart', async () => {
    const dir = tempDir();
    const path = join(dir, 'state', POSTURE_FILE); // the directory is created on first write
    const clock = new Clock();
    const { p } = posture({ path, clock });
    p.start();
    clock.advance(HOUR);
    p.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54');
    p.recordUserAuth('ssh-rsa', 'SSH-2.0-JSCH-0.1.54');
    await p.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'state'))).toEqual([POSTURE_FILE]); // no temporary file left
    const before = p.report();

    clock.advance(2 * HOUR);
    const log = new MemoryLog();
    const { p: again } = posture({ path, clock, log });
    const after = again.report();
    expect(log.warnings()).toEqual([]);
    expect(after.since).toBe(before.since);
    expect(after.legacy).toEqual(before.legacy);
    expect(after.compat).toEqual(before.compat);
    expect(after.verdict).toBe('in-use');
    // Still within the window after the restart until 24 h after the use (T0 + 1 h).
    clock.advance(22 * HOUR - 1);
    expect(again.report().verdict).toBe('in-use');
    clock.advance(1);
    expect(again.report().verdict).toBe('unused');
  });

  it('writes the record start even when nothing was negotiated, so a restart cannot look like a 24 h old clean record', async () => {
    const dir = tempDir();
    const path = join(dir, POSTURE_FILE);
    const clock = new Clock();
    const { p } = posture({ path, clock });
    await p.close();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ version: 1, since: T0, entries: [] });
    clock.advance(30 * HOUR);
    expect(posture({ path, clock }).p.report().verdict).toBe('unused');
  });

  it('writes only when something changed', async () => {
    const dir = tempDir();
    const path = join(dir, POSTURE_FILE);
    const { p } = posture({ path });
    await p.flush();
    writeFileSync(path, 'marker');
    await p.flush();
    expect(readFileSync(path, 'utf8')).toBe('marker');
    p.recordHandshake(OPENSSH, 'SSH-2.0-OpenSSH_9.2p1'); // nothing watched: still no write
    await p.flush();
    expect(readFileSync(path, 'utf8')).toBe('marker');
    p.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54');
    await p.flush();
    expect(JSON.parse(readFileSync(path, 'utf8')).entries).toHaveLength(4);
  });

  for (const [name, text] of [
    ['not JSON', '{"version":1,"since":'],
    ['the wrong shape', JSON.stringify({ version: 1, since: 'yesterday', entries: [] })],
    ['an unknown version', JSON.stringify({ version: 9, since: 0, entries: [] })],
  ] as const) {
    it(`a corrupt record (${name}) is logged, moved aside, and an empty one started`, async () => {
      const dir = tempDir();
      const path = join(dir, POSTURE_FILE);
      writeFileSync(path, text);
      const log = new MemoryLog();
      const clock = new Clock();
      const { p } = posture({ path, clock, log });
      expect(log.warnings()).toHaveLength(1);
      expect(log.warnings()[0]).toContain(`the algorithm posture record ${path} is corrupt (`);
      expect(log.warnings()[0]).toContain(`moved it to ${path}.corrupt and started an empty record`);
      expect(readFileSync(`${path}.corrupt`, 'utf8')).toBe(text);
      expect(p.report()).toMatchObject({ verdict: 'unused-short-record', since: new Date(T0).toISOString(), legacy: [] });
      p.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54');
      await p.close();
      expect(posture({ path, clock }).p.report().verdict).toBe('in-use');
    });
  }

  it('a record that cannot be written is logged once, kept in memory, retried, and never throws', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'not-a-dir'), '');
    const path = join(dir, 'not-a-dir', POSTURE_FILE);
    const log = new MemoryLog();
    const { p } = posture({ path, log });
    p.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54');
    await expect(p.flush()).resolves.toBeUndefined();
    await expect(p.close()).resolves.toBeUndefined();
    const warnings = log.warnings().filter((w) => w.startsWith('cannot write the algorithm posture record'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('kept in memory and retried every minute');
    expect(p.report().verdict).toBe('in-use');
    // Once the directory is there, the retry succeeds.
    rmSync(join(dir, 'not-a-dir'));
    mkdirSync(join(dir, 'not-a-dir'));
    await p.flush();
    expect(existsSync(path)).toBe(true);
    expect(log.lines.at(-1)!.msg).toBe('algorithm posture record written again');
  });
});

describe('execgate doctor: legacy algorithm rows', () => {
  const node = (name: string) => ({ name, address: '127.0.0.1', priority: 100, sshPort: 2222, httpPort: 9422 });
  const answer = (name: string, report: ReturnType<AlgorithmPosture['report']> | undefined): PeerAnswer => ({
    node: node(name),
    url: `http://x/${name}`,
    status: { node: name, role: 'standby', token: null, leader: null, hostKeys: [], ...(report ? { algorithms: report } : {}) },
  });

  it('one warning row per legacy algorithm with its client, and a cluster verdict', () => {
    const { p: used, clock } = posture();
    clock.advance(25 * HOUR);
    used.recordHandshake(JSCH, 'SSH-2.0-JSCH-0.1.54');
    const { p: clean, clock: c2 } = posture();
    c2.advance(25 * HOUR);
    const rows = postureRows([answer('gw-a', used.report()), answer('gw-b', clean.report())]);
    const a = rows.filter((r) => r.target === 'gw-a');
    expect(a.map((r) => r.verdict)).toEqual(['warn', 'warn', 'warn']);
    expect(a[0]!.detail).toMatch(/^\S+ .+ in the last 24 h: 1 handshake, last 2026-12-02T11:00Z, client SSH-2\.0-JSCH-0\.1\.54$/);
    expect(a.map((r) => r.detail.split(' ')[0]).sort()).toEqual(['ecdh-sha2-nistp256', 'hmac-sha1', 'ssh-rsa']);
    expect(a.filter((r) => r.fix).length).toBe(1);
    expect(rows.find((r) => r.target === 'gw-b')).toMatchObject({ verdict: 'ok' });
    expect(rows.find((r) => r.target === 'cluster')).toMatchObject({ verdict: 'warn', detail: expect.stringContaining('gw-a (') });

    const allClean = postureRows([answer('gw-a', clean.report()), answer('gw-b', clean.report())]);
    expect(allClean.find((r) => r.target === 'cluster')).toMatchObject({ verdict: 'ok', detail: expect.stringContaining('safe to set auth.allowSshRsaSha1: false') });
    // An unreachable node or an older execgate: no "safe" claim for the cluster.
    const partial = postureRows([answer('gw-a', clean.report()), { node: node('gw-c'), url: 'http://x/gw-c', error: 'ECONNREFUSED' }]);
    expect(partial.find((r) => r.target === 'cluster')).toMatchObject({ verdict: 'skip', detail: expect.stringContaining('gw-c unreachable') });
    const old = postureRows([answer('gw-a', clean.report()), answer('gw-b', undefined)]);
    expect(old.find((r) => r.target === 'cluster')!.verdict).toBe('skip');
  });
});

// Keep the window constant honest: the status text says "24 h".
it('the window is 24 h', () => {
  expect(WINDOW_MS).toBe(24 * HOUR);
});

describe('algorithm profile', () => {
  it('never offers plain zlib; ssh-rsa, NIST curves and hmac-sha1 only with allowSshRsaSha1', () => {
    const modern = algorithmProfile(false);
    const legacy = algorithmProfile(true);
    for (const p of [modern, legacy]) {
      expect(p.algorithms.compress).toEqual(['none', 'zlib@openssh.com']);
      expect(p.serverSigAlgs).not.toContain('ssh-dss');
      expect(p.algorithms.cipher.some((c) => c.endsWith('-cbc'))).toBe(false);
    }
    const offered = (p: typeof modern) => [...p.algorithms.kex, ...p.algorithms.serverHostKey, ...p.algorithms.hmac, ...p.serverSigAlgs];
    expect(offered(modern).filter((a) => a === 'ssh-rsa' || (a.includes('nistp') && !a.startsWith('ecdsa-sha2')) || a === 'hmac-sha1')).toEqual([]);
    expect(modern.algorithms.serverHostKey).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']);
    // JSch 0.1.55 (Rundeck <= 5.9): ECDH over NIST curves, aes-ctr, hmac-sha1, ssh-rsa
    expect(legacy.algorithms.kex).toEqual(expect.arrayContaining(['ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521']));
    expect(legacy.algorithms.serverHostKey).toContain('ssh-rsa');
    expect(legacy.algorithms.cipher).toEqual(expect.arrayContaining(['aes128-ctr', 'aes256-ctr']));
    expect(legacy.algorithms.hmac).toContain('hmac-sha1');
    expect(legacy.serverSigAlgs).toContain('ssh-rsa');
    expect(modern.serverSigAlgs).not.toContain('ssh-rsa');
  });
});
