import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Client } from 'ssh2';
import { startTestGateway, ROOT, type TestGateway } from '../helpers/gateway.js';
import { connectClient, execOn, type ExecResult } from '../helpers/ssh2Client.js';

/**
 * Finding 1 of the hostile review: every failure between "slot taken" and "process
 * running" must give the slot back. The shell is a stand-in that never interprets the
 * command, so random bytes are sent exactly but never run as shell code.
 */
const FAKE_SHELL = join(ROOT, 'test/fixtures/fakeshell.sh');
const MAX_COMMANDS = 3;

/** An exec that must end (exit status and close) within the deadline. */
async function execEnds(client: Client, command: string, opts: { env?: Record<string, string> } = {}, ms = 10_000): Promise<ExecResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms to ${JSON.stringify(command)}`)), ms)));
  try {
    return await Promise.race([execOn(client, command, opts), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Hostile strings: any code point, NUL and shell bytes especially. */
const hostile = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: fc.constantFrom('\0', 'x', ' ', '\n', ';', '$', '"', '\u00ff', '\ud800'), minLength: 1, maxLength: 30 }));

describe('a command slot is released on every path', () => {
  let gw: TestGateway;
  let normal: Client;
  let forced: Client;

  beforeAll(async () => {
    gw = await startTestGateway({
      exec: { shell: FAKE_SHELL, killGraceSeconds: 2 },
      env: { allow: ['RD_*'] },
      limits: { maxCommands: MAX_COMMANDS, maxCommandsPerUser: MAX_COMMANDS },
    });
    // The RSA key runs a forced command: the client's command arrives as SSH_ORIGINAL_COMMAND.
    const keysPath = join(gw.dir, 'authorized_keys');
    const lines = readFileSync(keysPath, 'utf8').trim().split('\n');
    writeFileSync(keysPath, `${lines[0]}\ncommand="forced" ${lines[1]}\n`);
    normal = await connectClient(gw.port, gw.keys.ed25519);
    forced = await connectClient(gw.port, gw.keys.rsaPem);
  });
  afterAll(async () => {
    normal?.end();
    forced?.end();
    await gw?.stop();
  });

  /** All slots are free: MAX_COMMANDS commands that hold a slot run at once. */
  async function slotsAreFree(): Promise<void> {
    const held = await Promise.all(Array.from({ length: MAX_COMMANDS }, () => execEnds(normal, 'hold')));
    expect(held.map((r) => [r.code, r.stderr])).toEqual(Array.from({ length: MAX_COMMANDS }, () => [0, '']));
  }

  it('random bytes as command, env value and forced-command input never leak a slot', async () => {
    await fc.assert(
      fc.asyncProperty(hostile, hostile, fc.boolean(), async (command, envValue, useForced) => {
        const r = await execEnds(useForced ? forced : normal, command, { env: { RD_HOSTILE: envValue } });
        // It ran (0), or it could not be run (126) with a line that says why.
        if (r.code !== 0) {
          expect(r.code).toBe(126);
          expect(r.stderr).toMatch(/^execgate: cannot run the command: .+\n$/);
        }
      }),
      { numRuns: 100 },
    );
    await slotsAreFree();
  });

  it('1000 execs with a NUL byte leave every slot free, and the gateway stops at once on SIGTERM', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => connectClient(gw.port, gw.keys.ed25519)));
    try {
      const started = Date.now();
      const results = await Promise.all(
        clients.map(async (c, i) => {
          const codes: Array<number | null> = [];
          for (let n = 0; n < 100; n++) codes.push((await execEnds(c, `echo ${i}-${n}\0tail`)).code);
          return codes;
        }),
      );
      const codes = results.flat();
      expect(codes).toHaveLength(1000);
      // 126: could not run; 75: all MAX_COMMANDS slots were busy with other hostile execs at that moment.
      expect(codes.filter((c) => c !== 126 && c !== 75)).toEqual([]);
      expect(codes.filter((c) => c === 126).length).toBeGreaterThan(MAX_COMMANDS);
      console.log(`1000 NUL execs answered in ${Date.now() - started} ms`);
    } finally {
      for (const c of clients) c.end();
    }
    await slotsAreFree();
    const ends = gw.audit().filter((r) => r.event === 'end' && (r.result === 'spawn-failed' || r.result === 'refused:max-commands'));
    expect(ends.length).toBeGreaterThanOrEqual(1000);
    // No registry entry was left behind to block the shutdown.
    const exited = new Promise<number | null>((resolve) => gw.proc.once('exit', (code) => resolve(code)));
    gw.proc.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
    expect(code, gw.output().split('\n').slice(-15).join('\n')).toBe(0);
  });
});
