import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { planLaunch } from '../../src/exec/launch.js';

describe('launch across a privilege drop', () => {
  const alice = { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/sh' };
  const env = { PATH: '/evil/bin', LD_PRELOAD: '/evil.so', RD_X: 'a b "$HOME"\nline', 'BAD-NAME': 'x' };

  it('restores the exact values after the drop (run here without the drop)', () => {
    const plan = planLaunch(['/usr/bin/env'], env, alice);
    const restore = plan.args.slice(plan.args.indexOf('--') + 1);
    const out = execFileSync(restore[0]!, restore.slice(1), { env: plan.env }).toString();
    expect(out).toContain('RD_X=a b "$HOME"\nline\n');
    expect(out).toContain('LD_PRELOAD=/evil.so\n');
    expect(out).toContain('PATH=/evil/bin\n');
    expect(out).not.toContain('EXECGATE_ENV_');
    expect(out).not.toContain('BAD-NAME');
  });
});
