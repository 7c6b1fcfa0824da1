import { describe, it, expect, afterAll } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { AccountCache, plausibleAccountName, type Account } from '../../src/account/account.js';
import { RunAsPolicy } from '../../src/account/runAs.js';
import { parseKeyOptions } from '../../src/ssh/keyOptions.js';
import { authorizedKeysPathProblem, expandAuthorizedKeysPath, isPerUserPath } from '../../src/config/authorizedKeysPath.js';
import { strictModesProblem } from '../../src/ssh/authorizedKeys.js';
import { parseConfig } from '../../src/config/load.js';
import { loadClusterFile, nodeConfigFromCluster, parseCluster } from '../../src/config/clusterLoad.js';
import { DEFAULT_CLUSTER_AUTHORIZED_KEYS } from '../../src/config/cluster.js';

const minimal = { hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: 'a.jsonl' } };
const EXAMPLE = resolve(import.meta.dirname, '../../deploy/example-cluster.yaml');
const acct = (name: string, uid: number): Account => ({ name, uid, gid: uid, home: `/home/${name}`, shell: '/bin/sh' });
const asRoot = process.getuid?.() === 0;

describe('account names and lookups', () => {
  it('refuses names that are options, paths, uids or control characters before any lookup', () => {
    for (const bad of ['', '-h', 'a/b', '..', '.', '0', '1000', 'a:b', 'a b', 'a\nb', 'a\0b', 'x'.repeat(257)]) expect(plausibleAccountName(bad), bad).toBe(false);
    for (const good of ['root', 'rundeck', 'svc.deploy', 'user@REALM', 'a-b_c', 'u1', 'machine$']) expect(plausibleAccountName(good), good).toBe(true);
  });

  it('caches briefly, asks once per name at a time, and runs a bounded number of lookups', async () => {
    let now = 0;
    let running = 0;
    let peak = 0;
    const calls: string[] = [];
    const cache = new AccountCache({
      ttlMs: 1000,
      negativeTtlMs: 100,
      maxConcurrent: 2,
      now: () => now,
      lookup: async (name) => {
        calls.push(name);
        peak = Math.max(peak, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return name.startsWith('nobody-') ? null : acct(name, 1000 + calls.length);
      },
    });
    const first = await Promise.all([cache.get('alice'), cache.get('alice'), cache.get('bob'), cache.get('carol'), cache.get('nobody-x')]);
    expect(first[0]).toBe(first[1]);
    expect(calls.sort()).toEqual(['alice', 'bob', 'carol', 'nobody-x']);
    expect(peak).toBeLessThanOrEqual(2);
    expect(cache.peek('alice')?.name).toBe('alice');
    expect(cache.peek('nobody-x')).toBeNull();
    expect(cache.peek('../x')).toBeNull(); // never looked up
    now = 150; // the negative answer expired, the positive one not
    expect(cache.peek('nobody-x')).toBeUndefined();
    expect(cache.peek('alice')).not.toBeUndefined();
    now = 1500;
    expect(cache.peek('alice')).toBeUndefined();
  });
});

describe.runIf(asRoot)('run-as policy on a root gateway', () => {
  const cache = (accounts: Account[]) => new AccountCache({ lookup: async (n) => accounts.find((a) => a.name === n) ?? null });

  it('identity model: the username is the account; unknown and uid-0 names are refused; root only with permitRoot', async () => {
    const p = new RunAsPolicy({}, cache([acct('alice', 1001), acct('toor', 0)]));
    expect(p.mode).toBe('identity');
    const alice = await p.resolve('alice');
    expect(alice.ok && alice.target.account.uid === 1001 && alice.target.switchUser).toBe(true);
    expect(await p.resolve('mallory')).toMatchObject({ ok: false, category: 'unknown_user' });
    expect(await p.resolve('root')).toMatchObject({ ok: false, category: 'root_refused' });
    expect(await p.resolve('toor')).toMatchObject({ ok: false, category: 'root_refused', reason: expect.stringMatching(/runAs\.permitRoot is false/) });
    expect(p.reachable()).toEqual({ kind: 'any' });
    const permitted = new RunAsPolicy({ permitRoot: true }, cache([acct('toor', 0)]));
    expect(await permitted.resolve('root')).toMatchObject({ ok: true, target: { switchUser: false } });
    expect(await permitted.resolve('toor')).toMatchObject({ ok: true, target: { account: { uid: 0 } } });
  });

  it('a broken NSS is not "no such user"', async () => {
    const p = new RunAsPolicy({}, new AccountCache({ lookup: async () => Promise.reject(new Error('nss down')) }));
    expect(await p.resolve('alice')).toMatchObject({ ok: false, category: 'lookup_failed', reason: expect.stringContaining('nss down') });
  });

  it('mappings to uid 0 need permitRoot at startup; the shared-file reach counts distinct accounts', () => {
    expect(() => new RunAsPolicy({ user: 'root' })).toThrow(/runAs\.user is "root", which is uid 0 \(root\), and runAs\.permitRoot is false/);
    expect(() => new RunAsPolicy({ accounts: { ops: 'root' } })).toThrow(/runAs\.accounts\.ops is "root".*runAs\.permitRoot/);
    const p = new RunAsPolicy({ accounts: { a: 'root', b: 'root' }, permitRoot: true });
    expect(p.reachable()).toMatchObject({ kind: 'accounts', accounts: [{ name: 'root' }] });
    expect(p.peek('c')).toMatchObject({ ok: false, reason: 'username "c" is not in runAs.accounts' });
  });
});

describe('execgate-accounts key option', () => {
  it('lists accounts; empty, odd or repeated lists are errors', () => {
    expect(parseKeyOptions('execgate-accounts="rundeck,deploy",no-pty', false).accounts).toEqual(['rundeck', 'deploy']);
    expect(parseKeyOptions('', false).accounts).toBeNull();
    expect(() => parseKeyOptions('execgate-accounts=""', false)).toThrow(/must list local account names/);
    expect(() => parseKeyOptions('execgate-accounts="a/b"', false)).toThrow(/"a\/b" is not one/);
    expect(() => parseKeyOptions('execgate-accounts', false)).toThrow(/needs a value/);
    expect(() => parseKeyOptions('execgate-accounts="a",execgate-accounts="b"', false)).toThrow(/given twice/);
  });
});

describe('authorizedKeys path tokens', () => {
  it('knows %u, %h and %%, and refuses anything else', () => {
    expect(authorizedKeysPathProblem('/etc/execgate/authorized_keys/%u')).toBeNull();
    expect(authorizedKeysPathProblem('%h/.ssh/authorized_keys')).toBeNull();
    expect(authorizedKeysPathProblem('/srv/100%%/keys')).toBeNull();
    expect(authorizedKeysPathProblem('/etc/keys/%U')).toMatch(/"%U" is not a token/);
    expect(authorizedKeysPathProblem('/etc/keys/%')).toMatch(/"%" is not a token/);
    expect(authorizedKeysPathProblem('/home/%h/keys')).toMatch(/%h must start the path/);
    expect(isPerUserPath('/k/%u')).toBe(true);
    expect(isPerUserPath('/k/%%u')).toBe(false);
    expect(expandAuthorizedKeysPath('/k/%u/%%u', { user: 'alice', home: '/home/alice' })).toBe('/k/alice/%u');
    expect(expandAuthorizedKeysPath('%h/.ssh/authorized_keys', { user: 'a', home: '/home/a/' })).toBe('/home/a/.ssh/authorized_keys');
  });

  it('config: %h paths stay home-relative, bad tokens are config errors, runAs.permitRoot defaults to false', () => {
    expect(parseConfig({ ...minimal, authorizedKeys: '%h/.ssh/authorized_keys' }, 't.yaml', '/etc/execgate').authorizedKeys).toBe('%h/.ssh/authorized_keys');
    expect(parseConfig({ ...minimal, authorizedKeys: 'keys/%u' }, 't.yaml', '/etc/execgate').authorizedKeys).toBe('/etc/execgate/keys/%u');
    expect(() => parseConfig({ ...minimal, authorizedKeys: '/k/%n' }, 't.yaml', '/')).toThrow(/authorizedKeys: "%n" is not a token/);
    expect(parseConfig(minimal, 't.yaml', '/').runAs.permitRoot).toBe(false);
    expect(() => parseConfig({ ...minimal, runAs: { user: 'a', accounts: { b: 'b' } } }, 't.yaml', '/')).toThrow(/set runAs\.user .* or runAs\.accounts .*, not both/);
  });

  it('cluster files default to one file per SSH user', () => {
    expect(DEFAULT_CLUSTER_AUTHORIZED_KEYS).toBe('/etc/execgate/authorized_keys/%u');
    const cluster = loadClusterFile(EXAMPLE);
    expect(nodeConfigFromCluster(cluster, cluster.nodes[0]!.name, EXAMPLE).authorizedKeys).toBe('/etc/execgate/authorized_keys/%u');
    const raw = JSON.parse(JSON.stringify(cluster)) as { gateway: Record<string, unknown> };
    delete raw.gateway.authorizedKeys;
    expect(parseCluster(raw, 'test').gateway.authorizedKeys).toBe(DEFAULT_CLUSTER_AUTHORIZED_KEYS);
  });
});

describe('StrictModes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-strict-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const me = userInfo();
  const owners = [{ uid: me.uid, name: me.username }];

  it('accepts a private file and directory (below a sticky /tmp), refuses group/world-writable ones with the fix', () => {
    const sub = join(dir, 'keys');
    mkdirSync(sub, { mode: 0o755 });
    const file = join(sub, 'alice');
    writeFileSync(file, '', { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(strictModesProblem(file, owners)).toBeNull();
    chmodSync(file, 0o620);
    expect(strictModesProblem(file, owners)).toBe(`authorized_keys ${file} has mode 0620, writable by group or others: run "chmod go-w ${file}" (StrictModes, as sshd)`);
    chmodSync(file, 0o600);
    chmodSync(sub, 0o1777); // sticky is not enough for the file's own directory
    expect(strictModesProblem(file, owners)).toMatch(new RegExp(`^directory ${sub} above authorized_keys ${file} has mode 1777, writable by group or others: run "chmod go-w ${sub}"`));
    chmodSync(sub, 0o755);
    const link = join(dir, 'link');
    symlinkSync(file, link);
    chmodSync(file, 0o666);
    expect(strictModesProblem(link, owners)).toMatch(new RegExp(`^authorized_keys ${link} \\(${file}\\) has mode 0666`));
    chmodSync(file, 0o600);
    expect(strictModesProblem(link, owners)).toBeNull();
    expect(() => strictModesProblem(join(sub, 'missing'), owners)).toThrow(/ENOENT/);
  });
});
