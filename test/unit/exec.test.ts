import { describe, it, expect } from 'vitest';
import { envAllowList, buildEnvironment } from '../../src/exec/environment.js';
import { exitStatusFor } from '../../src/exec/runner.js';
import { admit } from '../../src/leadership/gate.js';
import { StaticLeadership } from '../../src/leadership/static.js';
import type { Leadership } from '../../src/leadership/types.js';

describe('env allow-list', () => {
  it('matches globs exactly, not as substrings', () => {
    const allowed = envAllowList(['RD_*', 'LANG']);
    expect(allowed('RD_JOB_EXECID')).toBe(true);
    expect(allowed('LANG')).toBe(true);
    expect(allowed('XRD_JOB')).toBe(false);
    expect(allowed('LANGUAGE')).toBe(false);
    expect(allowed('LD_PRELOAD')).toBe(false);
  });

  it('builds a clean environment where client values cannot override identity', () => {
    const env = buildEnvironment(
      { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/bash' },
      '/usr/bin:/bin',
      new Map([['RD_X', '1']]),
      { node: 'gw1', fencingToken: 17n, execId: 'e1', clientAddress: '198.18.0.10', clientPort: 5000, serverAddress: '198.18.0.100', serverPort: 22 },
    );
    expect(env).toMatchObject({ HOME: '/home/alice', USER: 'alice', RD_X: '1', EXECGATE_NODE: 'gw1', EXECGATE_FENCING_TOKEN: '17', EXECGATE_EXEC_ID: 'e1' });
    expect(env.SSH_CONNECTION).toBe('198.18.0.10 5000 198.18.0.100 22');
  });
});

describe('exit status', () => {
  it('is the code, or 128 + signal number', () => {
    expect(exitStatusFor(3, null)).toBe(3);
    expect(exitStatusFor(null, 'SIGKILL')).toBe(137);
    expect(exitStatusFor(null, 'SIGTERM')).toBe(143);
  });
});

describe('leader gate', () => {
  it('admits on the static leader with its token', () => {
    expect(admit('gw1', new StaticLeadership('gw1', 5n))).toEqual({ admitted: true, token: 5n });
  });

  it('refuses a standby, naming the node, the leader and the token', () => {
    const standby: Leadership = {
      kind: 'fake',
      current: () => ({ role: 'standby', token: 17n, leader: 'gw1', since: 0 }),
      onChange: () => () => {},
      start: async () => {},
      stop: async () => {},
    };
    expect(admit('gw2', standby)).toEqual({
      admitted: false,
      reason: 'standby',
      message: 'execgate: gw2 is standby; leader is gw1 (token 17); not running',
    });
  });
});
