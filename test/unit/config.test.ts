import { describe, it, expect } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ExecgateError } from '../../src/errors.js';

const minimal = { hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: 'a.jsonl' } };

function problem(raw: unknown): string {
  try {
    parseConfig(raw, 'test.yaml', '/etc/execgate');
  } catch (err) {
    expect(err).toBeInstanceOf(ExecgateError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('config', () => {
  it('fills safe defaults and resolves paths against the config file', () => {
    const c = parseConfig(minimal, 'test.yaml', '/etc/execgate');
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 2222 });
    expect(c.env.allow).toEqual(['RD_*']);
    expect(c.auth.allowSshRsaSha1).toBe(true);
    expect(c.hostKeys).toEqual(['/etc/execgate/k']);
    expect(c.audit.path).toBe('/etc/execgate/a.jsonl');
    expect(c.exec.shell).toBe('/bin/sh');
  });

  it('names the path of a wrong value', () => {
    expect(problem({ ...minimal, listen: { port: 70000 } })).toMatch(/listen\.port: .*65535/);
    expect(problem({ ...minimal, exec: { killGraceSeconds: -1 } })).toMatch(/exec\.killGraceSeconds: /);
    expect(problem({ ...minimal, exec: { shell: 'sh' } })).toMatch(/exec\.shell: .*"\/"/);
  });

  it('names missing and unknown keys', () => {
    expect(problem({ hostKeys: ['k'], audit: { path: 'x' } })).toMatch(/authorizedKeys: /);
    expect(problem({ ...minimal, limits: { maxConections: 3 } })).toMatch(/limits\.maxConections: unknown key/);
  });
});

describe('run-once config', () => {
  it('refuses run-once without etcd, naming the key', () => {
    expect(problem({ ...minimal, runOnce: { enabled: true } })).toMatch(/runOnce\.etcd: required when runOnce\.enabled/);
  });
});
