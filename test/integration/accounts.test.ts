import { describe, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, makeClientKeys, startTestGateway, waitForOutput, type TestGateway } from '../helpers/gateway.js';
import { run, ssh } from '../helpers/clients.js';
import { labIt, notRoot } from '../helpers/lab.js';
import { sleep } from '../helpers/proc.js';
import { until } from '../helpers/until.js';
import { ensureAccount } from '../helpers/accounts.js';

// Accounts made for this file (removed afterwards): the SSH username is the local account.
const ALICE = 'egacct-alice';
const BOB = 'egacct-bob';

const uidOf = (name: string) => Number(execFileSync('id', ['-u', name]).toString().trim());
const pub = (key: string) => readFileSync(`${key}.pub`, 'utf8');

const removals: Array<() => void> = [];
beforeAll(() => {
  if (notRoot()) return;
  for (const name of [ALICE, BOB]) removals.push(ensureAccount(name));
});
afterAll(() => {
  for (const remove of removals) remove();
});

/** True once a log line's msg matches (the log is one JSON object per line). */
function logged(output: () => string, pattern: RegExp, timeoutMs = 3000): Promise<number | null> {
  return until(
    () =>
      output()
        .split('\n')
        .some((line) => {
          try {
            return pattern.test(String((JSON.parse(line) as { msg?: unknown }).msg));
          } catch {
            return false;
          }
        }),
    timeoutMs,
  );
}

describe('sshd account model: the SSH username is the local account, keys per user (%u)', () => {
  const missing = notRoot();
  let clientDir = '';
  let keysRoot = '';
  const key: Record<string, string> = {};
  let gw: TestGateway | undefined;

  beforeAll(async () => {
    if (missing) return;
    clientDir = mkdtempSync(join(tmpdir(), 'execgate-acct-client-'));
    for (const who of ['alice', 'alice2', 'bob', 'root']) {
      mkdirSync(join(clientDir, who));
      key[who] = makeClientKeys(join(clientDir, who)).ed25519;
    }
    keysRoot = mkdtempSync(join(tmpdir(), 'execgate-acct-keys-'));
    writeFileSync(join(keysRoot, ALICE), pub(key.alice!), { mode: 0o644 });
    writeFileSync(join(keysRoot, 'root'), pub(key.root!), { mode: 0o644 });
    // The product default: no runAs mapping, root not permitted.
    gw = await startTestGateway({ authorizedKeys: join(keysRoot, '%u'), runAs: { permitRoot: false } });
  });
  afterAll(async () => {
    await gw?.stop();
    for (const dir of [clientDir, keysRoot]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  labIt('a username runs as the local account of that name, and the log and audit say so', missing, async () => {
    const r = await ssh(gw!.port, key.alice!, 'id -un; id -u; echo $HOME', { user: ALICE });
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toBe(`${ALICE}\n${uidOf(ALICE)}\n/home/${ALICE}\n`);
    expect(gw!.output()).toMatch(new RegExp(`"user":"${ALICE}","account":"${ALICE}"[^\\n]*"msg":"authenticated"`));
    expect(gw!.audit().some((a) => a.user === ALICE && a.account === ALICE && a.uid === uidOf(ALICE))).toBe(true);
  });

  labIt('root is refused without runAs.permitRoot, even with a key in its file; so is a uid typed as a name', missing, async () => {
    const r = await ssh(gw!.port, key.root!, 'id -u');
    expect(r.code).toBe(255);
    expect(r.stdout.toString()).toBe('');
    expect(await logged(gw!.output, /username "root" is the local account root with uid 0 and runAs\.permitRoot is false/)).not.toBeNull();
    const uid0 = await ssh(gw!.port, key.root!, 'id -u', { user: '0' });
    expect(uid0.code).toBe(255);
    expect(await logged(gw!.output, /username "0" is not a local account \(not a valid account name\)/)).not.toBeNull();
  });

  labIt('a username with no local account is refused at authentication, naming it', missing, async () => {
    const r = await ssh(gw!.port, key.alice!, 'echo should-not-run', { user: 'egacct-nosuch' });
    expect(r.code).toBe(255);
    expect(r.stdout.toString()).toBe('');
    expect(await logged(gw!.output, /username "egacct-nosuch" is not a local account \(getent passwd egacct-nosuch found nothing\)/)).not.toBeNull();
  });

  labIt("an account without a file has no keys; once written, the file is read; alice's key cannot log in as bob", missing, async () => {
    const before = await ssh(gw!.port, key.bob!, 'echo should-not-run', { user: BOB });
    expect(before.code).toBe(255);
    expect(await logged(gw!.output, new RegExp(`${keysRoot}/${BOB} does not exist, so ${BOB} has no keys`))).not.toBeNull();
    writeFileSync(join(keysRoot, BOB), pub(key.bob!), { mode: 0o644 });
    const bob = await ssh(gw!.port, key.bob!, 'id -un', { user: BOB });
    expect(bob.stdout.toString()).toBe(`${BOB}\n`);
    const crossed = await ssh(gw!.port, key.alice!, 'id -un', { user: BOB });
    expect(crossed.code).toBe(255);
    expect(crossed.stdout.toString()).toBe('');
    expect(await logged(gw!.output, new RegExp(`key SHA256:\\S+ is not in ${keysRoot}/${BOB}$`))).not.toBeNull();
    // and a per-user file is re-read when it changes
    appendFileSync(join(keysRoot, ALICE), pub(key.alice2!));
    expect((await ssh(gw!.port, key.alice2!, 'id -un', { user: ALICE })).stdout.toString()).toBe(`${ALICE}\n`);
  });

  labIt('StrictModes: a group/world-writable file or directory, or a foreign owner, is refused with the fix', missing, async () => {
    const file = join(keysRoot, ALICE);
    // A StrictModes verdict stands for up to 1 s: each change is given that long to count.
    const login = async () => {
      await sleep(1100);
      return ssh(gw!.port, key.alice!, 'id -un', { user: ALICE });
    };
    try {
      chmodSync(file, 0o666);
      expect((await login()).code).toBe(255);
      expect(await logged(gw!.output, new RegExp(`authorized_keys ${file} has mode 0666, writable by group or others: run "chmod go-w ${file}"`))).not.toBeNull();
      chmodSync(file, 0o644);
      chmodSync(keysRoot, 0o777);
      expect((await login()).code).toBe(255);
      expect(await logged(gw!.output, new RegExp(`directory ${keysRoot} above authorized_keys ${file} has mode 0777, writable by group or others: run "chmod go-w ${keysRoot}"`))).not.toBeNull();
      chmodSync(keysRoot, 0o700);
      chownSync(file, uidOf(BOB), 0);
      expect((await login()).code).toBe(255);
      expect(await logged(gw!.output, new RegExp(`authorized_keys ${file} is owned by uid ${uidOf(BOB)}, not by root or ${ALICE}: run "chown root ${file}"`))).not.toBeNull();
      // Owned by the account itself is fine (as with sshd).
      chownSync(file, uidOf(ALICE), 0);
      expect((await login()).stdout.toString()).toBe(`${ALICE}\n`);
    } finally {
      chmodSync(keysRoot, 0o700);
      chmodSync(file, 0o644);
      chownSync(file, 0, 0);
    }
    expect((await login()).stdout.toString()).toBe(`${ALICE}\n`);
  });
});

describe("%h: the keys in each account's home, as with sshd (%h/.ssh/authorized_keys)", () => {
  const missing = notRoot();
  let clientDir = '';
  let aliceKey = '';
  let gw: TestGateway | undefined;
  const sshDir = `/home/${ALICE}/.ssh`;

  beforeAll(async () => {
    if (missing) return;
    clientDir = mkdtempSync(join(tmpdir(), 'execgate-acct-home-'));
    aliceKey = makeClientKeys(clientDir).ed25519;
    mkdirSync(sshDir, { mode: 0o700, recursive: true });
    writeFileSync(join(sshDir, 'authorized_keys'), pub(aliceKey), { mode: 0o600 });
    execFileSync('chown', ['-R', `${ALICE}:`, sshDir]);
    gw = await startTestGateway({ authorizedKeys: '%h/.ssh/authorized_keys', runAs: { permitRoot: false } });
  });
  afterAll(async () => {
    await gw?.stop();
    if (clientDir) rmSync(clientDir, { recursive: true, force: true });
    if (!missing) rmSync(sshDir, { recursive: true, force: true });
  });

  labIt("alice's own file (owned by her) lets her in; bob's home has none", missing, async () => {
    expect((await ssh(gw!.port, aliceKey, 'id -un', { user: ALICE })).stdout.toString()).toBe(`${ALICE}\n`);
    expect((await ssh(gw!.port, aliceKey, 'id -un', { user: BOB })).code).toBe(255);
    expect(await logged(gw!.output, new RegExp(`/home/${BOB}/\\.ssh/authorized_keys does not exist, so ${BOB} has no keys`))).not.toBeNull();
  });
});

describe('startup refuses configs that could hand root or every account to one key', () => {
  const missing = notRoot();
  let dir = '';
  let base: Record<string, unknown> = {};

  beforeAll(() => {
    if (missing) return;
    dir = mkdtempSync(join(tmpdir(), 'execgate-acct-start-'));
    execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'host')]);
    const k = makeClientKeys(dir);
    writeFileSync(join(dir, 'authorized_keys'), pub(k.ed25519), { mode: 0o600 });
    base = {
      listen: { port: 0 },
      http: { enabled: false },
      hostKeys: [join(dir, 'host/ssh_host_ed25519_key'), join(dir, 'host/ssh_host_rsa_key')],
      authorizedKeys: join(dir, 'authorized_keys'),
      audit: { path: join(dir, 'audit.jsonl') },
    };
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const serveWith = async (config: Record<string, unknown>) => {
    const path = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, stringify({ ...base, ...config }));
    const r = await run(process.execPath, [CLI, 'serve', '--config', path]);
    return { code: r.code, stderr: r.stderr.trim() };
  };

  labIt('one shared file and root without runAs: each key must name its accounts', missing, async () => {
    const r = await serveWith({});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is one file for every SSH username and execgate runs as root with no runAs mapping, so a username may be any local account');
    expect(r.stderr).toContain('line 1 lacks that option: put execgate-accounts="NAME[,NAME...]" before the key');
    expect(r.stderr).toContain('authorizedKeys: /etc/execgate/authorized_keys/%u');
  });

  labIt('one shared file mapping two accounts is refused too', missing, async () => {
    const r = await serveWith({ runAs: { accounts: { a: ALICE, b: BOB } } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`runAs maps usernames to 2 local accounts (${ALICE}, ${BOB})`);
  });

  labIt('a mapping to root needs runAs.permitRoot', missing, async () => {
    const viaAccounts = await serveWith({ runAs: { accounts: { ops: 'root' } } });
    expect(viaAccounts.code).toBe(2);
    expect(viaAccounts.stderr).toContain('runAs.accounts.ops is "root", which is uid 0 (root), and runAs.permitRoot is false');
    const viaUser = await serveWith({ runAs: { user: 'root' } });
    expect(viaUser.code).toBe(2);
    expect(viaUser.stderr).toContain('runAs.user is "root", which is uid 0 (root), and runAs.permitRoot is false');
  });

  labIt('a fixed file writable by others is refused at startup (StrictModes)', missing, async () => {
    const file = join(dir, 'authorized_keys');
    chmodSync(file, 0o666);
    try {
      const r = await serveWith({ runAs: { user: ALICE } });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`execgate: authorized_keys ${file} has mode 0666, writable by group or others: run "chmod go-w ${file}" (StrictModes, as sshd)`);
    } finally {
      chmodSync(file, 0o600);
    }
  });
});

describe('a gateway without root runs commands only as its own account', () => {
  const missing = notRoot();
  let dir = '';
  let proc: ChildProcess | undefined;
  let out = '';
  let port = 0;
  let clientKey = '';

  beforeAll(async () => {
    if (missing) return;
    dir = mkdtempSync(join(tmpdir(), 'execgate-acct-nonroot-'));
    execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'host')]);
    clientKey = makeClientKeys(dir).ed25519;
    writeFileSync(join(dir, 'authorized_keys'), pub(clientKey), { mode: 0o600 });
    const config = {
      listen: { host: '127.0.0.1', port: 0 },
      http: { enabled: false },
      hostKeys: [join(dir, 'host/ssh_host_ed25519_key'), join(dir, 'host/ssh_host_rsa_key')],
      authorizedKeys: join(dir, 'authorized_keys'),
      audit: { path: join(dir, 'audit.jsonl') },
    };
    writeFileSync(join(dir, 'config.yaml'), stringify(config));
    execFileSync('chown', ['-R', `${ALICE}:`, dir]);
    proc = spawn('setpriv', [`--reuid=${ALICE}`, `--regid=${ALICE}`, '--init-groups', '--', process.execPath, CLI, 'serve', '--config', join(dir, 'config.yaml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: `/home/${ALICE}` },
    });
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    port = Number((await waitForOutput(proc, () => out, /"listen":"127\.0\.0\.1:(\d+)"/))[1]);
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  labIt('its own username runs; another account is refused with what would allow it', missing, async () => {
    expect((await ssh(port, clientKey, 'id -un', { user: ALICE })).stdout.toString()).toBe(`${ALICE}\n`);
    for (const user of [BOB, 'root']) {
      const r = await ssh(port, clientKey, 'echo should-not-run', { user });
      expect(r.code).toBe(255);
      expect(r.stdout.toString()).toBe('');
      expect(
        await logged(
          () => out,
          new RegExp(
            `username "${user}" is not ${ALICE}, and execgate runs as ${ALICE} without root so it can only run commands as ${ALICE}: run execgate as root, or map the username with runAs.accounts \\(or runAs.user\\) to ${ALICE}`,
          ),
        ),
      ).not.toBeNull();
    }
  });
});
