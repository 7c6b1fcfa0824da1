import { describe, it, expect } from 'vitest';
import { envAllowList, buildEnvironment } from '../../src/exec/environment.js';
import { exitStatusFor } from '../../src/exec/runner.js';
import { planLaunch } from '../../src/exec/launch.js';

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
    const env = buildEnvironment({ name: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/bash' }, '/usr/bin:/bin', new Map([['RD_X', '1']]), {
      node: 'gw1',
      fencingToken: 17n,
      execId: 'e1',
      clientAddress: '198.18.0.10',
      clientPort: 5000,
      serverAddress: '198.18.0.100',
      serverPort: 22,
    });
    expect(env).toMatchObject({ HOME: '/home/alice', USER: 'alice', RD_X: '1', EXECGATE_NODE: 'gw1', EXECGATE_FENCING_TOKEN: '17', EXECGATE_EXEC_ID: 'e1' });
    expect(env.SSH_CONNECTION).toBe('198.18.0.10 5000 198.18.0.100 22');
  });
});

describe('env allow-list refuses unsafe variables', () => {
  it('names the pattern and the variables it would let in', () => {
    expect(() => envAllowList(['RD_*', '*'])).toThrow(/env\.allow pattern "\*" lets clients set LD_PRELOAD, .*PATH.*: remove it from env\.allow, or set env\.allowUnsafe: true/);
    expect(() => envAllowList(['PYTHON*'])).toThrow(/PYTHONPATH, PYTHONSTARTUP, PYTHONHOME/);
  });
  it('lets them in only when forced, and never through a pattern that did not foresee them', () => {
    expect(envAllowList(['LD_PRELOAD'], true)('LD_PRELOAD')).toBe(true);
    expect(envAllowList(['RD_*', 'LANG'])('LD_PRELOAD')).toBe(false);
  });
});

describe('launch across a privilege drop', () => {
  const alice = { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/sh' };
  const env = { PATH: '/evil/bin', LD_PRELOAD: '/evil.so', RD_X: 'a b "$HOME"\nline', 'BAD-NAME': 'x' };

  it('without a switch, passes the environment straight through', () => {
    expect(planLaunch(['/bin/sh', '-c', 'id'], env, null)).toEqual({ file: '/bin/sh', args: ['-c', 'id'], env });
  });

  it('with a switch, root sees only a fixed environment and setpriv by absolute path', () => {
    const plan = planLaunch(['/bin/sh', '-c', 'id'], env, alice);
    expect(plan.file).toMatch(/^\/(usr\/)?bin\/setpriv$/);
    expect(plan.args.slice(0, 4)).toEqual(['--reuid=1000', '--regid=1000', '--init-groups', '--']);
    expect(plan.env.PATH).toBe('/usr/sbin:/usr/bin:/sbin:/bin');
    expect(plan.env.LD_PRELOAD).toBeUndefined();
    expect(Object.keys(plan.env).filter((n) => !n.startsWith('EXECGATE_ENV_'))).toEqual(['PATH', 'LANG']);
  });
});

describe('exit status', () => {
  it('is the code, or 128 + signal number', () => {
    expect(exitStatusFor(3, null)).toBe(3);
    expect(exitStatusFor(null, 'SIGKILL')).toBe(137);
    expect(exitStatusFor(null, 'SIGTERM')).toBe(143);
  });
});
