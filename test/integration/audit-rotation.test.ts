import { describe, it, expect, afterEach } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CLI, startTestGateway, waitForOutput, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

const read = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

/** Finding 11: after logrotate's mv the gateway kept writing to the old inode. */
describe('audit log rotation', () => {
  let gw: TestGateway | null = null;
  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });

  it("after a rename, the next command's lines land in a new file at the path", async () => {
    gw = await startTestGateway();
    expect((await ssh(gw.port, gw.keys.ed25519, 'echo one')).code).toBe(0);
    renameSync(gw.auditPath, `${gw.auditPath}.1`);
    expect((await ssh(gw.port, gw.keys.ed25519, 'echo two')).code).toBe(0);
    const old = read(`${gw.auditPath}.1`);
    const now = read(gw.auditPath);
    expect(old.filter((r) => r.event === 'end').map((r) => r.command)).toEqual(['echo one']);
    expect(now.filter((r) => r.event === 'end').map((r) => r.command)).toEqual(['echo two']);
    expect(now[0]).toMatchObject({ event: 'open', reason: 'rotated' });
  });

  it('SIGHUP reopens the path at once (and no longer ends the gateway)', async () => {
    gw = await startTestGateway();
    expect((await ssh(gw.port, gw.keys.ed25519, 'echo one')).code).toBe(0);
    renameSync(gw.auditPath, `${gw.auditPath}.1`);
    gw.proc.kill('SIGHUP');
    expect(await until(() => read(gw!.auditPath).some((r) => r.event === 'open' && r.reason === 'reopen'), 5000)).not.toBeNull();
    expect(gw.proc.exitCode).toBeNull();
    expect(gw.proc.signalCode).toBeNull();
    expect((await ssh(gw.port, gw.keys.ed25519, 'echo two')).code).toBe(0);
    expect(
      read(gw.auditPath)
        .filter((r) => r.event === 'end')
        .map((r) => r.command),
    ).toEqual(['echo two']);
    expect(gw.output()).toMatch(/"msg":"audit log reopened"/);
  });
});

const canMount = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"']).status === 0;

/** Finding 11: an audit write failure must stop commands (exit 75) until writes work again. */
describe('audit log on a full file system (a 256 KiB tmpfs in a private mount namespace)', () => {
  let gw: TestGateway | null = null;
  let proc: ChildProcess | null = null;
  afterEach(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    await gw?.stop(); // its process is already gone; removes the directory
  });

  it.skipIf(!canMount)('ENOSPC -> commands refused with exit 75 and the reason, /healthz says so -> space again -> commands run, kept lines written', async () => {
    // A gateway's directory (keys, config), then the same config with the audit log on a tiny tmpfs.
    gw = await startTestGateway();
    const exited = new Promise((r) => gw!.proc.once('exit', r));
    gw.proc.kill('SIGTERM');
    await exited;
    const configPath = join(gw.dir, 'config.yaml');
    const mnt = join(gw.dir, 'auditfs');
    mkdirSync(mnt);
    const config = parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    config.audit = { path: join(mnt, 'audit.jsonl') };
    writeFileSync(configPath, stringify(config));
    // unshare and sh exec: the gateway keeps this pid, and its mount namespace dies with it.
    proc = spawn(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=256k execgate-audit "$0" && exec "$@"', mnt, process.execPath, CLI, 'serve', '--config', configPath],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const port = Number((await waitForOutput(proc, () => out, /"listen":"127\.0\.0\.1:(\d+)"/))[1]);
    const http = Number(/"http":"[^"]*:(\d+)",[^\n]*"msg":"http listening"/.exec(out)![1]);
    // The tmpfs as the gateway sees it, reached through its root.
    const view = `/proc/${proc.pid}/root${mnt}`;
    const auditView = join(view, 'audit.jsonl');
    const key = gw.keys.ed25519;
    const auditHealth = async () => {
      const r = await fetch(`http://127.0.0.1:${http}/healthz`);
      return ((await r.json()) as { checks: { audit: { ok: boolean; detail: string } } }).checks.audit;
    };

    expect((await ssh(port, key, 'echo before')).code).toBe(0);
    expect((await auditHealth()).ok).toBe(true);

    // Fill it up (the write fails part-way with ENOSPC: the file system is then full).
    const filler = join(view, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(512 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    // Rotated while full, then SIGHUP: the gateway writes its reopen marker into a new file,
    // which needs a fresh page (the old file's last page may still have room): ENOSPC now,
    // not at some later command.
    renameSync(auditView, `${auditView}.1`);
    proc.kill('SIGHUP');
    expect(await until(() => /"msg":"audit log write failed: refusing new commands/.test(out), 5000), out).not.toBeNull();
    const down = await auditHealth();
    expect(down.ok).toBe(false);
    expect(down.detail).toMatch(/ENOSPC/);

    const refused = await ssh(port, key, 'echo must-not-run');
    expect(refused.code).toBe(75);
    expect(refused.stdout.toString()).not.toContain('must-not-run');
    expect(refused.stderr).toMatch(/the audit log .*audit\.jsonl cannot be written \(ENOSPC/);

    // Space again: the gateway's own probe notices (no command needed) within about a second.
    rmSync(filler);
    expect(await until(() => /"msg":"audit log writable again/.test(out), 5000), out).not.toBeNull();
    expect((await auditHealth()).ok).toBe(true);
    const back = await ssh(port, key, 'echo back');
    expect(back.code).toBe(0);
    expect(back.stdout.toString()).toBe('back\n');

    const records = [...read(`${auditView}.1`), ...read(auditView)];
    const recovered = records.find((r) => r.reason === 'write-recovered');
    expect(recovered).toMatchObject({ event: 'open' });
    expect(String(recovered!.error)).toMatch(/ENOSPC/);
    // The refusal's own end record was kept in memory and written on recovery; the commands before and after are there.
    const ends = records.filter((r) => r.event === 'end').map((r) => [r.command, r.result]);
    expect(ends).toContainEqual(['echo before', 'completed']);
    expect(ends.find(([c]) => c === 'echo must-not-run')?.[1]).toMatch(/^refused:/);
    expect(ends).toContainEqual(['echo back', 'completed']);
  });
});
