import { describe, expect, it, beforeAll } from 'vitest';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeTlsFailure, loadEtcdTls } from '../../src/etcd/tls.js';
import { readEtcdPassword } from '../../src/etcd/password.js';

/**
 * The files of an etcd connection, checked at start like host keys, and TLS failures in
 * words. Fixtures: test/fixtures/etcd-tls (a CA, a client certificate without a CN and its
 * key, an expired certificate, a key of nothing); copied because git keeps no 0600 mode.
 */
const FIXTURES = join(import.meta.dirname, '../fixtures/etcd-tls');
let dir: string;
const files = (over: Partial<{ caFile: string; certFile: string; keyFile: string }> = {}) => ({
  caFile: join(dir, 'ca.pem'),
  certFile: join(dir, 'client.pem'),
  keyFile: join(dir, 'client-key.pem'),
  ...over,
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'execgate-etcd-tls-'));
  for (const f of ['ca.pem', 'client.pem', 'client-key.pem', 'expired.pem', 'other-key.pem']) copyFileSync(join(FIXTURES, f), join(dir, f));
  chmodSync(join(dir, 'client-key.pem'), 0o600);
  chmodSync(join(dir, 'other-key.pem'), 0o600);
  copyFileSync(join(FIXTURES, 'client-key.pem'), join(dir, 'gw2-key.pem'));
  chmodSync(join(dir, 'gw2-key.pem'), 0o600);
});

describe('etcd TLS files', () => {
  it('loads a CA, a certificate and its key, with %n as the node name', () => {
    const m = loadEtcdTls(files({ keyFile: join(dir, '%n-key.pem') }), 'gw2', 'leadership.etcd.tls');
    expect(m.keyFile).toBe(join(dir, 'gw2-key.pem'));
    expect(m.certNotAfter.getUTCFullYear()).toBeGreaterThan(2100);
  });

  it('refuses a key readable by others, naming the key and the chmod', () => {
    const open = join(dir, 'open-key.pem');
    copyFileSync(join(FIXTURES, 'client-key.pem'), open);
    chmodSync(open, 0o644);
    expect(() => loadEtcdTls(files({ keyFile: open }), 'gw1', 'leadership.etcd.tls')).toThrow(
      `leadership.etcd.tls.keyFile: ${open} has mode 0644, readable by group or others: run "chmod 600 ${open}"`,
    );
  });

  it('refuses a missing file with how to make it, a key of another certificate, an expired certificate, and a CA that is no certificate', () => {
    expect(() => loadEtcdTls(files({ caFile: join(dir, 'nope.pem') }), 'gw1', 'runOnce.etcd.tls')).toThrow(/runOnce\.etcd\.tls\.caFile: .*nope\.pem does not exist \(make it with: execgate certs/);
    expect(() => loadEtcdTls(files({ keyFile: join(dir, 'other-key.pem') }), 'gw1', 'leadership.etcd.tls')).toThrow(/other-key\.pem is not the key of .*client\.pem/);
    expect(() => loadEtcdTls(files({ certFile: join(dir, 'expired.pem') }), 'gw1', 'leadership.etcd.tls')).toThrow(
      /expired\.pem expired on 2020-01-02T00:00:00\.000Z; make a new one with execgate certs/,
    );
    expect(() => loadEtcdTls(files({ caFile: join(dir, 'client-key.pem') }), 'gw1', 'leadership.etcd.tls')).toThrow(/leadership\.etcd\.tls\.caFile: .* is not a PEM certificate/);
  });

  it('tells which side refused the handshake and the file to look at', () => {
    const tls = { key: 'leadership.etcd.tls', caFile: '/e/ca.pem', certFile: '/e/client.pem' };
    expect(describeTlsFailure(Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), tls)).toMatch(
      /not signed by the CA in leadership\.etcd\.tls\.caFile \(\/e\/ca\.pem\)/,
    );
    expect(describeTlsFailure(Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), tls)).toMatch(/does not name this address/);
    expect(describeTlsFailure(new Error('write EPROTO 40C7:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate'), tls)).toMatch(
      /refused this node's client certificate leadership\.etcd\.tls\.certFile \(\/e\/client\.pem\)/,
    );
    expect(describeTlsFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), tls)).toBeNull();
  });
});

describe('the etcd password file', () => {
  it('reads one line of at least 16 printable characters from a 0600 file', () => {
    const p = join(dir, 'password');
    writeFileSync(p, 'sixteen-or-more-chars\n', { mode: 0o600 });
    expect(readEtcdPassword(p, 'gw1', 'leadership.etcd.auth.passwordFile')).toBe('sixteen-or-more-chars');
  });

  it('refuses an open file, a short password and a missing file, naming the key', () => {
    const open = join(dir, 'open-password');
    writeFileSync(open, 'sixteen-or-more-chars\n', { mode: 0o640 });
    chmodSync(open, 0o640);
    expect(() => readEtcdPassword(open, 'gw1', 'leadership.etcd.auth.passwordFile')).toThrow(/leadership\.etcd\.auth\.passwordFile: .* has mode 0640.*chmod 600/);
    const short = join(dir, 'short');
    writeFileSync(short, 'short\n', { mode: 0o600 });
    expect(() => readEtcdPassword(short, 'gw1', 'leadership.etcd.auth.passwordFile')).toThrow(/holds no password \(one line of at least 16/);
    expect(() => readEtcdPassword(join(dir, '%n.pw'), 'gw3', 'k')).toThrow(/gw3\.pw does not exist/);
  });
});
