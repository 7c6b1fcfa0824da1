import { describe, expect, it } from 'vitest';
import { parseRunArgs, USAGE } from '../../deploy/lab/netns/run.js';

describe('npm run lab: the command line is checked before a lab is built', () => {
  it('defaults: vrrp, every scenario, once, the long drain load', () => {
    expect(parseRunArgs([])).toMatchObject({ topologies: ['vrrp'], scenarios: 'all', repeat: 1, handover: 'fast', drainLoad: 'long', keepDir: false });
  });

  it('reads every option', () => {
    const args = ['--topology', 'all', '--scenario', 'drain,rolling', '--repeat', '3', '--ttl', '2', '--handover', 'strict', '--drain-load', 'short', '--prefix', 'eg', '--keep-dir'];
    expect(parseRunArgs(args)).toMatchObject({
      topologies: ['vrrp', 'vrrp-etcd', 'haproxy-etcd'],
      scenarios: ['drain', 'rolling'],
      repeat: 3,
      ttlSeconds: 2,
      handover: 'strict',
      drainLoad: 'short',
      prefix: 'eg',
      keepDir: true,
    });
  });

  it.each([['--help'], ['-h']])('%s asks for the usage', (flag) => {
    expect(parseRunArgs([flag])).toBe('help');
    expect(USAGE).toContain('--drain-load');
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--scenario', 'failover'], /unknown scenario failover; known: sigkill/],
    [['--topology', 'x'], /--topology must be one of/],
    [['--repeat', '0'], /--repeat must be a whole number/],
    [['--ttl', 'soon'], /--ttl must be a whole number/],
    [['--handover', 'slow'], /--handover must be one of/],
    [['--drain-load', 'huge'], /--drain-load must be one of/],
    [['drain'], /Unexpected argument 'drain'|positional/i],
  ])('%j is refused with the reason', (argv, reason) => {
    expect(() => parseRunArgs(argv)).toThrow(reason);
  });
});
