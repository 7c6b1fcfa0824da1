import { describe, it, expect, afterAll } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readServerTokenFile, resolveServerToken, generateToken } from '../../src/http/token.js';
import { prepareEmbeddedSetup } from '../../src/bootstrap/stateDir.js';
import { parseConfig } from '../../src/config/load.js';
import { target } from '../../src/cli/target.js';

const isRoot = process.getuid?.() === 0;
const dir = mkdtempSync(join(tmpdir(), 'execgate-http-token-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tokenFile(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode });
  chmodSync(p, mode);
  return p;
}

describe('http.tokenFile on the server', () => {
  it('reads a 0600 file holding one token', () => {
    const p = tokenFile('good', 'a-token-of-twenty-chars\n');
    expect(readServerTokenFile(p)).toBe('a-token-of-twenty-chars');
    expect(resolveServerToken({ tokenFile: p })).toBe('a-token-of-twenty-chars');
    expect(resolveServerToken({ token: 'inline-token-16-chars' })).toBe('inline-token-16-chars');
    expect(resolveServerToken({})).toBeUndefined();
  });

  it('refuses a file readable by group or others, naming the key and the chmod', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      const p = tokenFile(`open-${mode.toString(8)}`, 'a-token-of-twenty-chars\n', mode);
      expect(() => readServerTokenFile(p)).toThrow(
        `http.tokenFile: ${p} has mode 0${mode.toString(8)}, open to group or others (any local account could drain this node and read command lines): run "chmod 600 ${p}"`,
      );
    }
  });

  it.skipIf(!isRoot)('refuses a file owned by another account', () => {
    const p = tokenFile('foreign', 'a-token-of-twenty-chars\n');
    chownSync(p, 65534, 65534);
    expect(() => readServerTokenFile(p)).toThrow(`http.tokenFile: ${p} is owned by uid 65534, who could change the token: run "chown root ${p}"`);
  });

  it('refuses a missing file, a symbolic link, a directory and a short or spaced token', () => {
    const missing = join(dir, 'missing');
    expect(() => readServerTokenFile(missing)).toThrow(`http.tokenFile: cannot read ${missing}: ENOENT; create it: (umask 077; openssl rand -hex 32 > ${missing})`);
    const link = join(dir, 'link');
    symlinkSync(tokenFile('target', 'a-token-of-twenty-chars'), link);
    expect(() => readServerTokenFile(link)).toThrow(/ELOOP; name the file itself, not a symbolic link/);
    const sub = join(dir, 'subdir');
    mkdirSync(sub, { mode: 0o700 });
    expect(() => readServerTokenFile(sub)).toThrow(`http.tokenFile: ${sub} is not a regular file`);
    for (const [name, text] of [
      ['short', 'short\n'],
      ['spaced', 'two words of a token\n'],
      ['empty', ''],
    ]) {
      const p = tokenFile(name!, text!);
      expect(() => readServerTokenFile(p)).toThrow(/must hold one token of at least 16 printable characters without spaces/);
    }
  });

  it('config: token and tokenFile exclude each other; a relative tokenFile is relative to the config file', () => {
    const base = { hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: 'a' } };
    expect(() => parseConfig({ ...base, http: { token: 'inline-token-16-chars', tokenFile: 't' } }, 'c.yaml', dir)).toThrow(
      'config c.yaml is invalid: http.tokenFile: set http.token or http.tokenFile, not both (prefer tokenFile: a mode 0600 file holding the token)',
    );
    expect(parseConfig({ ...base, http: { tokenFile: 'secret/http-token' } }, 'c.yaml', '/etc/execgate').http.tokenFile).toBe('/etc/execgate/secret/http-token');
    expect(() => parseConfig({ ...base, http: { token: 'has a space in it!!' } }, 'c.yaml', dir)).toThrow(/http.token: printable characters without spaces/);
  });

  it('generated tokens are long and distinct', () => {
    const a = generateToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateToken()).not.toBe(a);
  });
});

describe('embedded defaults', () => {
  it('generate a 0600 token file in the state directory, keep it across restarts, and use it', () => {
    const state = join(dir, 'state');
    const setup = prepareEmbeddedSetup(state, '127.0.0.1', 0, 0);
    expect(setup.httpTokenFile).toBe(join(state, 'http-token'));
    expect(statSync(setup.httpTokenFile).mode & 0o777).toBe(0o600);
    const token = readServerTokenFile(setup.httpTokenFile);
    expect(setup.config.http).toMatchObject({ host: '127.0.0.1', tokenFile: setup.httpTokenFile });
    expect(readServerTokenFile(prepareEmbeddedSetup(state, '127.0.0.1', 0, 0).httpTokenFile)).toBe(token);
  });
});

describe('the CLI finds the token', () => {
  const env = {};
  const state = join(dir, 'cli-state');
  mkdirSync(state, { mode: 0o700 });
  const stateToken = tokenFile('cli-state/http-token', 'state-dir-token-0123456789\n');

  it('in order: --token, --token-file, EXECGATE_HTTP_TOKEN, then the state directory', () => {
    const other = tokenFile('other', 'other-token-0123456789\n');
    expect(target({ token: 'flag-token-0123456789', 'token-file': other, 'state-dir': state }, { EXECGATE_HTTP_TOKEN: 'env-token-0123456789' })).toMatchObject({
      url: 'http://127.0.0.1:9422',
      token: 'flag-token-0123456789',
    });
    expect(target({ 'token-file': other, 'state-dir': state }, { EXECGATE_HTTP_TOKEN: 'env-token-0123456789' })).toEqual({
      url: 'http://127.0.0.1:9422',
      token: 'other-token-0123456789',
      tokenNote: `sent the token from --token-file ${other}`,
    });
    expect(target({ 'state-dir': state }, { EXECGATE_HTTP_TOKEN: 'env-token-0123456789' }).token).toBe('env-token-0123456789');
    expect(target({ 'state-dir': state }, env)).toEqual({ url: 'http://127.0.0.1:9422', token: 'state-dir-token-0123456789', tokenNote: `sent the token from ${stateToken}` });
    expect(target({}, { EXECGATE_STATE_DIR: state }).token).toBe('state-dir-token-0123456789');
  });

  it('says which token file it tried', () => {
    const none = join(dir, 'no-state');
    expect(target({ 'state-dir': none }, env)).toEqual({
      url: 'http://127.0.0.1:9422',
      token: undefined,
      tokenNote: `sent no token; tried --token, --token-file and EXECGATE_HTTP_TOKEN (none given); ${join(none, 'http-token')}: ENOENT`,
    });
    expect(() => target({ 'token-file': join(dir, 'nope') }, env)).toThrow(`--token-file ${join(dir, 'nope')}: ENOENT`);
    // The default state directory's token goes only to a gateway on this host.
    const remote = target({ url: 'http://192.0.2.10:9422' }, { EXECGATE_STATE_DIR: state });
    expect(remote.token).toBeUndefined();
    expect(remote.tokenNote).toContain(`${stateToken} not sent: it belongs to a gateway on this host and http://192.0.2.10:9422 is not loopback`);
    expect(target({ url: 'http://[::1]:9000' }, { EXECGATE_STATE_DIR: state }).token).toBe('state-dir-token-0123456789');
  });

  it('from the --config or --cluster file the verb is pointed at', () => {
    const t = tokenFile('cfg-token', 'config-token-0123456789\n');
    const cfg = join(dir, 'config.yaml');
    writeFileSync(cfg, stringify({ hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: 'a' }, http: { host: '0.0.0.0', port: 9500, tokenFile: 'cfg-token' } }));
    expect(target({ config: cfg }, env)).toEqual({ url: 'http://127.0.0.1:9500', token: 'config-token-0123456789', tokenNote: `sent the token from ${t} (http.tokenFile of ${cfg} (http))` });
    const cluster = join(dir, 'cluster.yaml');
    writeFileSync(
      cluster,
      stringify({
        cluster: 'c1',
        vip: { address: '198.18.0.100' },
        leadership: { source: 'static' },
        gateway: { hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: 'a' }, http: { tokenFile: join(dir, 'missing-token') } },
        nodes: [{ name: 'gw1', address: '198.18.0.11', priority: 150 }],
      }),
    );
    const c = target({ cluster, node: 'gw1' }, env);
    expect(c).toMatchObject({ url: 'http://198.18.0.11:9422', token: undefined });
    expect(c.tokenNote).toContain(`${join(dir, 'missing-token')} (http.tokenFile of ${cluster} (gateway.http)): ENOENT`);
  });
});
