import { describe, it, expect } from 'vitest';
import { counted, fakeChannel, makePipeline, request } from '../helpers/commandFakes.js';
import { spawnFailedOutcome } from '../../src/exec/runner.js';
import { ClientEnvironment } from '../../src/command/clientEnvironment.js';
import { planCommand } from '../../src/command/plan.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('command pipeline: running and recording', () => {
  it('runs an admitted command: registry, metrics, start and end records, exit status', async () => {
    const fakes = makePipeline();
    fakes.autoExit = null;
    const req = request(fakes, 'exec', 'echo hi', {
      env: [
        ['LANG', 'C'],
        ['RD_JOB_EXECID', '5'],
        ['SECRET', 'x'],
      ],
    });
    const ch = fakeChannel();
    const done = fakes.pipeline.open(req, ch.channel);
    await tick();
    expect(fakes.registry.listRunning()).toEqual([expect.objectContaining({ user: 'alice', command: 'echo hi', client: '192.0.2.7:40000', pid: 4242, token: '7', server: '192.0.2.1' })]);
    expect(await fakes.metrics.commandsRunning.get()).toMatchObject({ values: [{ value: 1 }] });
    expect(ch.attachedCommand()).toBe(fakes.started[0]!.command);
    const { spec } = fakes.started[0]!;
    expect(spec).toMatchObject({ file: '/bin/sh', args: ['-c', 'echo hi'], cwd: '/', killGraceMs: 1000, closeGraceMs: 100 });
    expect(spec.env).toMatchObject({ LANG: 'C', RD_JOB_EXECID: '5', EXECGATE_NODE: 'gw1', EXECGATE_FENCING_TOKEN: '7', SSH_CONNECTION: '192.0.2.7 40000 192.0.2.1 22', USER: 'alice' });
    expect(spec.env.SECRET).toBeUndefined();
    fakes.started[0]!.command.exit(2);
    await done;
    expect(ch.ends).toEqual([{ how: 'end', status: 2 }]);
    expect(fakes.registry.size).toBe(0);
    expect(fakes.registry.listRecent()[0]).toMatchObject({ result: 'completed', exitStatus: 2 });
    expect(await fakes.metrics.commandsRunning.get()).toMatchObject({ values: [{ value: 0 }] });
    expect(await counted(fakes.metrics.commands, { result: 'completed' })).toBe(1);
    expect(fakes.audit.starts).toEqual([expect.objectContaining({ execId: fakes.audit.ends[0]!.execId, account: 'alice', uid: 1000, rdJobExecId: '5', pid: 4242, cgroup: null })]);
    expect(fakes.audit.ends[0]).toMatchObject({ result: 'completed', exitStatus: 2, exitCode: 2, bytesOut: { stdout: 3, stderr: 0 } });
    expect(req.events).toEqual(['decided', 'started', 'ended']);
    expect(fakes.slots.size).toBe(0);
  });

  it('a command that cannot start: "cannot run the command" (126), a spawn-failed record, the slot given back', async () => {
    const fakes = makePipeline();
    fakes.startThrows = 'spawn E2BIG\nsecond line';
    const ch = fakeChannel();
    await fakes.pipeline.open(request(fakes, 'exec', 'true'), ch.channel);
    expect(ch.ends).toEqual([{ how: 'refuse', status: 126, text: 'execgate: cannot run the command: spawn E2BIG\\x0asecond line' }]);
    expect(fakes.audit.starts).toHaveLength(0);
    expect(fakes.audit.ends[0]).toMatchObject({ result: 'spawn-failed', exitStatus: 126, error: 'spawn E2BIG\nsecond line' });
    expect(await counted(fakes.metrics.commands, { result: 'spawn_failed' })).toBe(1);
    expect(fakes.slots.size).toBe(0);
    expect(fakes.registry.size).toBe(0);
  });

  it('a program that never started (no pid) ends the same way, and a run-once claim gets its 126', async () => {
    const finished: number[] = [];
    const fakes = makePipeline({ runOnce: { decide: async () => ({ action: 'run-claimed', key: 'k', token: 3n, finish: async (s) => void finished.push(s) }) } });
    fakes.services.run.starter = {
      start: () => ({ pid: null, cgroupPath: null, done: Promise.resolve(spawnFailedOutcome('ENOENT', Date.now())), signal: () => false, terminate: () => null, clientGone: () => {} }),
    };
    const ch = fakeChannel();
    await fakes.pipeline.open(request(fakes, 'exec', 'true', { env: [['RD_JOB_EXECID', '1']] }), ch.channel);
    expect(ch.ends).toEqual([{ how: 'refuse', status: 126, text: 'execgate: cannot run the command: ENOENT' }]);
    expect(finished).toEqual([126]);
  });

  it('fails closed: a start record that cannot be written kills the command', async () => {
    const fakes = makePipeline();
    fakes.autoExit = null;
    fakes.audit.failStart = 'EIO: i/o error';
    const ch = fakeChannel();
    await fakes.pipeline.open(request(fakes, 'exec', 'sleep 9'), ch.channel);
    expect(fakes.started[0]!.command.terminated).toEqual([{ reason: 'the audit start record could not be written (EIO: i/o error)', immediate: false }]);
    expect(ch.ends).toEqual([{ how: 'end', status: 143 }]);
    expect(fakes.audit.ends[0]).toMatchObject({ result: 'killed', killReason: 'the audit start record could not be written (EIO: i/o error)' });
    expect(fakes.registry.size).toBe(0);
  });

  it('a client that went away: the command hears it, the end is audited, the channel is left alone', async () => {
    const fakes = makePipeline();
    fakes.autoExit = null;
    const ch = fakeChannel();
    const done = fakes.pipeline.open(request(fakes, 'exec', 'sleep 9'), ch.channel);
    await tick();
    ch.close();
    await tick();
    const { command } = fakes.started[0]!;
    expect(command.clientWentAway).toBe(true);
    command.exit(0);
    await done;
    expect(ch.ends).toEqual([]);
    expect(fakes.audit.ends[0]).toMatchObject({ result: 'completed', exitStatus: 0 });
    expect(fakes.slots.size).toBe(0);
    expect(fakes.registry.size).toBe(0);
  });

  it('last resort: a step that throws gives "internal error" (126); the slot and the claim are given back', async () => {
    const finished: number[] = [];
    const fakes = makePipeline({ runOnce: { decide: async () => ({ action: 'run-claimed', key: 'k', token: 3n, finish: async (s) => void finished.push(s) }) } });
    fakes.services.run.registry = {
      add: () => {
        throw new Error('registry broke');
      },
      finish: () => {},
    };
    const ch = fakeChannel();
    await fakes.pipeline.open(request(fakes, 'exec', 'true', { env: [['RD_JOB_EXECID', '1']] }), ch.channel);
    expect(ch.ends).toEqual([{ how: 'refuse', status: 126, text: 'execgate: internal error (registry broke); not running' }]);
    expect(fakes.slots.size).toBe(0);
    expect(finished).toEqual([126]);
  });

  it('a pty request reaches the starter at its size when the command starts', async () => {
    const fakes = makePipeline();
    const ch = fakeChannel();
    await fakes.pipeline.open(request(fakes, 'shell', null, { pty: { term: 'xterm', cols: 100, rows: 30 } }), ch.channel);
    expect(fakes.started[0]).toMatchObject({ pty: { term: 'xterm', cols: 100, rows: 30 }, spec: { file: '/bin/bash', args: ['-l'] } });
  });

  it('holds the last scp acknowledgement of a dispatch-script upload until the peers have the copy', async () => {
    const fakes = makePipeline();
    const uploads: Array<[string, number]> = [];
    fakes.services.run.scriptReplica = { afterUpload: async (path, uid) => void uploads.push([path, uid]), afterRemove: async () => {}, whyMissing: () => null };
    const ch = fakeChannel();
    await fakes.pipeline.open(request(fakes, 'exec', 'scp -t /tmp/3-9-gw1-dispatch-script.tmp.sh'), ch.channel);
    expect(ch.inputs).toHaveLength(1); // the gate watches the client's bytes
    expect(ch.ends).toEqual([{ how: 'end', status: 0 }]);
  });

  it("follows Rundeck's rm of its script on the peers once it succeeded here", async () => {
    const fakes = makePipeline();
    const removed: Array<[string, number]> = [];
    fakes.services.run.scriptReplica = { afterUpload: async () => {}, afterRemove: async (path, uid) => void removed.push([path, uid]), whyMissing: () => null };
    await fakes.pipeline.open(request(fakes, 'exec', 'rm -f /tmp/3-9-gw1-dispatch-script.tmp.sh'), fakeChannel().channel);
    expect(removed).toEqual([['/tmp/3-9-gw1-dispatch-script.tmp.sh', 1000]]);
  });
});

describe('command plan and client environment', () => {
  it('starts in / with a notice when the home directory is missing', () => {
    const fakes = makePipeline();
    const plan = planCommand(fakes.services.run.plan, request(fakes, 'exec', 'true'), 'id', null, () => false);
    expect(plan).toMatchObject({ cwd: '/', notice: 'execgate: could not chdir to home directory /: no such directory\n' });
  });

  it("keeps Rundeck's hints whatever the allow-list says, and counts bytes against limits.maxEnvBytes", () => {
    const env = new ClientEnvironment({ allowed: (n) => n === 'LANG', maxEnvVars: 10, maxEnvBytes: 10 });
    env.add('RD_JOB_EXECID', '42');
    env.add('LANG', 'C.UTF-8');
    expect(env.rdJobExecId).toBe('42');
    expect([...env.allowed]).toEqual([]);
    expect(env.overflow).toMatch(/limits\.maxEnvBytes \(10\) bytes/);
  });
});
