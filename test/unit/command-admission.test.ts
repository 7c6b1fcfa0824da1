import { describe, it, expect } from 'vitest';
import { counted, fakeChannel, makePipeline, request, type Fakes } from '../helpers/commandFakes.js';
import type { RunOnceDecision } from '../../src/runonce/coordinator.js';

/** Runs one request to its end; returns how the channel ended. */
async function open(fakes: Fakes, req: ReturnType<typeof request>) {
  const ch = fakeChannel();
  await fakes.pipeline.open(req, ch.channel);
  return ch;
}

async function expectRefused(fakes: Fakes, ch: ReturnType<typeof fakeChannel>, reason: string, message: RegExp) {
  expect(ch.ends).toEqual([{ how: 'refuse', status: 75, text: expect.stringMatching(message) }]);
  expect(fakes.started).toHaveLength(0);
  expect(fakes.audit.starts).toHaveLength(0);
  expect(fakes.audit.ends).toHaveLength(1);
  expect(fakes.audit.ends[0]).toMatchObject({ result: `refused:${reason}`, exitStatus: 75, user: 'alice', client: '192.0.2.7:40000', error: expect.stringMatching(message) });
  expect(await counted(fakes.metrics.commandsRefused, { reason })).toBe(1);
  expect(await counted(fakes.metrics.commands, { result: 'refused' })).toBe(1);
  expect(fakes.slots.size).toBe(0);
  expect(fakes.registry.size).toBe(0);
}

/** A run-once coordinator that answers with `decision` and remembers how the claim was finished. */
function runOnce(decision: RunOnceDecision | ((finish: (s: number) => Promise<void>) => RunOnceDecision)) {
  const finished: number[] = [];
  const asked: Array<{ command: string; env: ReadonlyMap<string, string> }> = [];
  const finish = async (status: number) => void finished.push(status);
  return {
    finished,
    asked,
    decide: async (command: string, env: ReadonlyMap<string, string>) => {
      asked.push({ command, env: new Map(env) });
      return typeof decision === 'function' ? decision(finish) : decision;
    },
  };
}
const claimed = (finish: (s: number) => Promise<void>): RunOnceDecision => ({ action: 'run-claimed', key: '/t/claims/77/d/1', token: 41n, finish });

describe('command admission: limits', () => {
  it('refuses a request whose environment overflowed limits.maxEnvVars/maxEnvBytes', async () => {
    const fakes = makePipeline();
    const req = request(fakes, 'exec', 'true', {
      env: [
        ['RD_A', '1'],
        ['RD_B', '2'],
        ['RD_C', '3'],
        ['RD_D', '4'],
      ],
    });
    const ch = await open(fakes, req);
    await expectRefused(fakes, ch, 'env-limit', /more than limits\.maxEnvVars \(3\) variables/);
    expect(req.events).toEqual([]); // refused before the gate: the connection's command is not decided
  });

  it('refuses a command line over limits.maxCommandBytes', async () => {
    const fakes = makePipeline();
    const ch = await open(fakes, request(fakes, 'exec', 'x'.repeat(101)));
    await expectRefused(fakes, ch, 'command-too-long', /command is 101 bytes, over limits\.maxCommandBytes \(100\)/);
  });

  it('refuses once limits.maxCommands run, and admits again once one ended (the slot is given back)', async () => {
    const fakes = makePipeline({ maxCommands: 1 });
    fakes.autoExit = null;
    const first = fakeChannel();
    const running = fakes.pipeline.open(request(fakes, 'exec', 'sleep 9'), first.channel);
    await new Promise((r) => setTimeout(r, 5));
    expect(fakes.slots.size).toBe(1);
    const ch = await open(fakes, request(fakes, 'exec', 'true'));
    expect(ch.ends).toEqual([{ how: 'refuse', status: 75, text: 'execgate: 1 commands are running on gw1 (limits.maxCommands); not running' }]);
    expect(await counted(fakes.metrics.commandsRefused, { reason: 'max-commands' })).toBe(1);
    fakes.started[0]!.command.exit(0);
    await running;
    expect(fakes.slots.size).toBe(0);
    fakes.autoExit = 0;
    expect((await open(fakes, request(fakes, 'exec', 'true'))).ends).toEqual([{ how: 'end', status: 0 }]);
    expect(fakes.slots.size).toBe(0);
  });

  it('refuses a user over limits.maxCommandsPerUser while another user still runs', async () => {
    const fakes = makePipeline({ maxCommandsPerUser: 1 });
    fakes.autoExit = null;
    const running = fakes.pipeline.open(request(fakes, 'exec', 'sleep 9'), fakeChannel().channel);
    await new Promise((r) => setTimeout(r, 5));
    const ch = await open(fakes, request(fakes, 'exec', 'true'));
    expect(ch.ends[0]).toEqual({ how: 'refuse', status: 75, text: 'execgate: user alice already runs 1 commands (limits.maxCommandsPerUser); not running' });
    expect(await counted(fakes.metrics.commandsRefused, { reason: 'max-commands-per-user' })).toBe(1);
    fakes.autoExit = 0;
    expect((await open(fakes, request(fakes, 'exec', 'true', { user: 'bob' }))).ends).toEqual([{ how: 'end', status: 0 }]);
    fakes.started[0]!.command.exit(0);
    await running;
    expect(fakes.slots.size).toBe(0);
  });
});

describe('command admission: the leader gate', () => {
  it('refuses on a standby (no wait)', async () => {
    const fakes = makePipeline();
    fakes.leadership.standBy('gw2', 9n);
    const req = request(fakes, 'exec', 'true');
    const ch = await open(fakes, req);
    await expectRefused(fakes, ch, 'standby', /^execgate: gw1 is standby; leader is gw2 \(token 9\); not running$/);
    expect(req.events).toEqual(['decided']);
  });

  it('admits a standby that takes the lead while the request waits (gateWaitMs), with the new token', async () => {
    const fakes = makePipeline({ gateWaitMs: 5000 });
    fakes.leadership.standBy('gw2', 9n);
    const req = request(fakes, 'exec', 'echo hi');
    const ch = fakeChannel();
    const done = fakes.pipeline.open(req, ch.channel);
    await new Promise((r) => setTimeout(r, 10));
    expect(fakes.started).toHaveLength(0);
    fakes.leadership.lead(12n);
    await done;
    expect(ch.ends).toEqual([{ how: 'end', status: 0 }]);
    expect(req.events).toEqual(['decided', 'started', 'ended']);
    expect(fakes.started[0]!.spec.env.EXECGATE_FENCING_TOKEN).toBe('12');
    expect(fakes.audit.starts[0]).toMatchObject({ token: '12', pid: 4242, command: 'echo hi' });
    expect(fakes.audit.ends[0]).toMatchObject({ token: '12', result: 'completed', exitStatus: 0 });
  });
});

describe('command admission: run-once', () => {
  it('refuses what the coordinator refuses (no claim to finish)', async () => {
    const ro = runOnce({ action: 'refuse', reason: 'run-once-no-execid', message: 'execgate: run-once needs the Rundeck execution id; not running unguarded' });
    const fakes = makePipeline({ runOnce: ro });
    const req = request(fakes, 'exec', 'do-work');
    await expectRefused(fakes, await open(fakes, req), 'run-once-no-execid', /needs the Rundeck execution id/);
    expect(req.events).toEqual(['decided']);
  });

  it('answers for the winner: its line on stdout, its status, a runonce:<outcome> record', async () => {
    const ro = runOnce({ action: 'answer', status: 4, outcome: 'mirrored', line: 'execgate: step ran on gw2 (token 3), exit 4' });
    const fakes = makePipeline({ runOnce: ro });
    const ch = await open(
      fakes,
      request(fakes, 'exec', 'do-work', {
        env: [
          ['RD_JOB_EXECID', '77'],
          ['RD_NODE_NAME', 'gw1'],
        ],
      }),
    );
    expect(ch.ends).toEqual([{ how: 'answer', status: 4, text: 'execgate: step ran on gw2 (token 3), exit 4' }]);
    expect(ro.asked[0]!.env).toEqual(
      new Map([
        ['RD_JOB_EXECID', '77'],
        ['RD_NODE_NAME', 'gw1'],
      ]),
    );
    expect(fakes.audit.ends).toEqual([expect.objectContaining({ result: 'runonce:mirrored', exitStatus: 4, rdJobExecId: '77', token: null })]);
    expect(await counted(fakes.metrics.commands, { result: 'runonce_mirrored' })).toBe(1);
    expect(fakes.started).toHaveLength(0);
    expect(fakes.slots.size).toBe(0);
  });

  it('runs a claimed step with the claim token and finishes the claim with its exit status', async () => {
    const ro = runOnce(claimed);
    const fakes = makePipeline({ runOnce: ro });
    fakes.autoExit = 3;
    const ch = await open(fakes, request(fakes, 'exec', 'do-work', { env: [['RD_JOB_EXECID', '77']] }));
    expect(ch.ends).toEqual([{ how: 'end', status: 3 }]);
    expect(ro.finished).toEqual([3]);
    expect(fakes.started[0]!.spec.env.EXECGATE_FENCING_TOKEN).toBe('41');
    expect(fakes.audit.ends[0]).toMatchObject({ result: 'completed', exitStatus: 3, token: '41', rdJobExecId: '77' });
    expect(fakes.slots.size).toBe(0);
  });

  it('runs a per-node step (run-local) without a token or claim', async () => {
    const ro = runOnce({ action: 'run-local' });
    const fakes = makePipeline({ runOnce: ro });
    const ch = await open(fakes, request(fakes, 'exec', 'rm -f /tmp/3-77-gw1-dispatch-script.tmp.sh'));
    expect(ch.ends).toEqual([{ how: 'end', status: 0 }]);
    expect(fakes.started[0]!.spec.env.EXECGATE_FENCING_TOKEN).toBe('');
    expect(ro.finished).toEqual([]);
  });

  it('runs sftp locally without asking the coordinator', async () => {
    const ro = runOnce(claimed);
    const fakes = makePipeline({ runOnce: ro });
    const ch = await open(fakes, request(fakes, 'sftp', null));
    expect(ch.ends).toEqual([{ how: 'end', status: 0 }]);
    expect(ro.asked).toEqual([]);
    expect(fakes.started[0]!.spec.args).toEqual([]);
    expect(fakes.started[0]!.spec.file).toBe('/usr/lib/openssh/sftp-server');
  });

  it('refuses a shell (run-once cannot deduplicate it)', async () => {
    const ro = runOnce(claimed);
    const fakes = makePipeline({ runOnce: ro });
    const req = request(fakes, 'shell', null);
    await expectRefused(fakes, await open(fakes, req), 'run-once-shell', /cannot deduplicate a shell session/);
    expect(ro.asked).toEqual([]);
    expect(req.events).toEqual([]);
  });

  it('finishes a won claim with 75 when a later check refuses (dispatch script missing)', async () => {
    const ro = runOnce(claimed);
    const fakes = makePipeline({ runOnce: ro });
    const script = '/nonexistent-execgate-test/17-77-gw1-dispatch-script.tmp.sh';
    const ch = await open(fakes, request(fakes, 'exec', script));
    await expectRefused(fakes, ch, 'dispatch-script-missing', /does not exist on gw1: the script was uploaded to another node before a failover; retry the step/);
    expect(fakes.audit.ends[0]!.token).toBeNull();
    expect(ro.finished).toEqual([75]);
  });
});

describe('command admission: this node', () => {
  it('refuses a dispatch script that is missing here, with why when replication knows', async () => {
    const fakes = makePipeline();
    fakes.services.admission.scriptReplica = { whyMissing: () => 'the copy was refused' };
    const ch = await open(fakes, request(fakes, 'exec', '/nonexistent-execgate-test/3-9-gw1-dispatch-script.tmp.sh arg'));
    await expectRefused(fakes, ch, 'dispatch-script-missing', /no copy reached gw1: the copy was refused/);
  });

  it('does not look for the script under a forced command', async () => {
    const fakes = makePipeline();
    const ch = await open(fakes, request(fakes, 'exec', '/nonexistent-execgate-test/3-9-gw1-dispatch-script.tmp.sh', { forced: 'true' }));
    expect(ch.ends).toEqual([{ how: 'end', status: 0 }]);
    expect(fakes.started[0]!.spec.args).toEqual(['-c', 'true']);
    expect(fakes.started[0]!.spec.env.SSH_ORIGINAL_COMMAND).toBe('/nonexistent-execgate-test/3-9-gw1-dispatch-script.tmp.sh');
  });

  it('refuses while the audit log cannot be written', async () => {
    const fakes = makePipeline();
    fakes.audit.refusal = 'the audit log /x cannot be written (ENOSPC: no space left on device)';
    const ch = await open(fakes, request(fakes, 'exec', 'true'));
    await expectRefused(fakes, ch, 'audit-unwritable', /^execgate: the audit log \/x cannot be written \(ENOSPC: no space left on device\); not running$/);
  });
});
