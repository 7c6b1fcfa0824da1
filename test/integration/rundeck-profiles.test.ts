import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync, readFileSync, existsSync, statSync, utimesSync, rmSync, chmodSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { jsch, JSCH_PROFILE, type JschOp } from '../helpers/clients.js';
import { until } from '../helpers/until.js';
import { sshjExec, sshjScriptStep, sshjScpUpload, sshjSftpGet, sshjSftpPut, sshjScpCommand, rundeckJobEnv, SSHJ_VERSION, offer, type SshjTarget } from '../helpers/sshjProfile.js';

/**
 * Every Rundeck client profile (docs/rundeck.md) against a real gateway, with the same
 * checks: `jsch-0.1.55` (test/jsch/RundeckStep.java on Debian's JSch jar, Rundeck
 * 2.x-5.9's jsch-ssh/jsch-scp) and `sshj` (test/helpers/sshjProfile.ts: sshj 0.40's wire
 * behaviour through the ssh2 client, Rundeck 4.16+'s default sshj-ssh/sshj-scp).
 */

/** What a Rundeck node step reports, whichever plugin ran it. */
interface StepRun {
  exit: number;
  stdout: string;
  stderr: string;
  /** Rundeck's failure line for the step, null on success. */
  failure: string | null;
}

interface ProfileOptions {
  /** ssh-config-ServerAliveInterval (JSch) / keep-alive-interval (sshj), seconds. */
  keepAliveSeconds?: number;
  /** Connect here instead of the gateway (a tap relay in front of it). */
  port?: number;
}

interface Profile {
  name: 'jsch-0.1.55' | 'sshj';
  /** The scp command line the plugin sends for an upload to `path`. */
  scpCommand(path: string): string;
  exec(command: string, env?: Record<string, string>, options?: ProfileOptions): Promise<StepRun>;
  step(script: string, execId: string, args: string, env: Record<string, string>): Promise<{ path: string; ops: StepRun[]; exit: number }>;
}

let gw: TestGateway;
const NODE = 'gw-test';

function jschRun(op: JschOp | undefined, error: JschOp | undefined): StepRun {
  if (error || !op) return { exit: -1, stdout: '', stderr: '', failure: `ConnectionFailure: ${error?.message ?? 'no result'}` };
  const exit = op.exit ?? -1;
  // JschNodeExecutor: a non-zero exit is NonZeroResultCode.
  return { exit, stdout: op.stdout ?? '', stderr: op.stderr ?? '', failure: exit === 0 ? null : `NonZeroResultCode: Remote command failed with exit status ${exit}` };
}

const envFlags = (env: Record<string, string>) => Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);

const jschProfile: Profile = {
  name: JSCH_PROFILE,
  scpCommand: (path) => `scp -t ${path}`,
  async exec(command, env = {}, options = {}) {
    const r = await jsch([
      '--host',
      '127.0.0.1',
      '--port',
      String(options.port ?? gw.port),
      '--user',
      'root',
      '--key',
      gw.keys.rsaPem,
      '--node',
      NODE,
      '--mode',
      'exec',
      '--command',
      command,
      ...envFlags(env),
      ...(options.keepAliveSeconds ? ['--server-alive-interval', String(options.keepAliveSeconds)] : []),
    ]);
    return jschRun(
      r.ops.find((o) => o.op === 'exec'),
      r.ops.find((o) => o.op === 'error'),
    );
  },
  async step(script, execId, args, env) {
    const r = await jsch([
      '--host',
      '127.0.0.1',
      '--port',
      String(gw.port),
      '--user',
      'root',
      '--key',
      gw.keys.rsaPem,
      '--node',
      NODE,
      '--mode',
      'step',
      '--script',
      script,
      '--execid',
      execId,
      '--args',
      args,
      ...envFlags(env),
    ]);
    const error = r.ops.find((o) => o.op === 'error');
    expect(error, `JSch step failed: ${error?.message}\n${r.stderr}`).toBeUndefined();
    const scp = r.ops.find((o) => o.op === 'scp')!;
    const execs = r.ops.filter((o) => o.op === 'exec').map((o) => jschRun(o, undefined));
    const upload: StepRun = { exit: scp.exit ?? -1, stdout: '', stderr: '', failure: null };
    return { path: scp.path!, ops: [upload, ...execs], exit: r.ops.find((o) => o.op === 'done')?.exit ?? -1 };
  },
};

const sshjTarget = (options: ProfileOptions = {}): SshjTarget => ({
  port: options.port ?? gw.port,
  keyPath: gw.keys.rsaPem,
  keepAliveInterval: options.keepAliveSeconds ?? 0,
});

const sshjProfile: Profile = {
  name: 'sshj',
  scpCommand: sshjScpCommand,
  async exec(command, env = {}, options = {}) {
    const r = await sshjExec(sshjTarget(options), command, env);
    return { exit: r.exit, stdout: r.stdout, stderr: r.stderr, failure: r.failure };
  },
  async step(script, execId, args, env) {
    const r = await sshjScriptStep(sshjTarget(), { script, execId, node: NODE, args, env });
    expect(r.upload.failure).toBeNull();
    const upload: StepRun = { exit: r.upload.exitStatus ?? -1, stdout: '', stderr: '', failure: r.upload.failure };
    const execs = [r.chmod, r.run, r.rm].filter((x) => x !== null).map((x) => ({ exit: x.exit, stdout: x.stdout, stderr: x.stderr, failure: x.failure }));
    return { path: r.path, ops: [upload, ...execs], exit: r.exit };
  },
};

/**
 * A TCP relay that timestamps (wall clock) every chunk in each direction. While a command
 * runs silently nothing crosses an exec session, so every client-to-server chunk in that
 * window is a keepalive, and a server-to-client chunk right after it is its answer.
 */
interface Tap {
  port: number;
  chunks: Array<{ dir: 'c2s' | 's2c'; t: number; bytes: number }>;
  /** Client chunks in [from, to] (epoch ms) answered by the server within answerMs. */
  answeredProbes(from: number, to: number, answerMs?: number): number;
  close(): Promise<void>;
}

async function startTap(targetPort: number): Promise<Tap> {
  const chunks: Tap['chunks'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (d: Buffer) => {
      chunks.push({ dir: 'c2s', t: Date.now(), bytes: d.length });
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      chunks.push({ dir: 's2c', t: Date.now(), bytes: d.length });
      client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    chunks,
    answeredProbes(from, to, answerMs = 300) {
      let n = 0;
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i]!;
        if (c.dir !== 'c2s' || c.t < from || c.t > to) continue;
        const answer = chunks.slice(i + 1).find((x) => x.dir === 's2c');
        if (answer && answer.t - c.t < answerMs) n++;
      }
      return n;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});

for (const profile of [jschProfile, sshjProfile]) {
  describe(`Rundeck client profile ${profile.name}`, () => {
    it('exec: stdout as data, stderr as extended data, the exit code', async () => {
      const r = await profile.exec('echo out; echo err >&2; exit 3');
      expect(r).toMatchObject({ exit: 3, stdout: 'out\n', stderr: 'err\n' });
      expect(r.failure).toMatch(/Remote command failed with exit status 3$/);
      const ok = await profile.exec('printf ok');
      expect(ok).toEqual({ exit: 0, stdout: 'ok', stderr: '', failure: null });
    });

    it('env: ~40 RD_* variables with want-reply arrive; a non-RD one is dropped but answered success; the audit has RD_JOB_EXECID', async () => {
      const execId = profile.name === 'sshj' ? '7101' : '7102';
      const env = { ...rundeckJobEnv({ execId, node: NODE, retryAttempt: 1 }), HOSTILE: 'injected' };
      expect(Object.keys(env).filter((k) => k.startsWith('RD_')).length).toBe(40);
      const r = await profile.exec('printf "%s|%s|%s|%s|%s\\n" "$RD_JOB_EXECID" "$RD_OPTION_DB_PASSWORD" "$RD_OPTION_NOTES" "$RD_JOB_RETRYATTEMPT" "${HOSTILE-unset}"; env | grep -c "^RD_"', env);
      // JSch aborts with "failed to send channel request" on any CHANNEL_FAILURE, so exit 0 here
      // means every env request (HOSTILE included) was answered success.
      expect(r).toMatchObject({ exit: 0, stderr: '', failure: null });
      expect(r.stdout).toBe(`${execId}|s3cr3t-pa55|a value with spaces, "quotes" and $dollars|1|unset\n40\n`);
      await until(() => gw.audit().some((a) => a.rdJobExecId === execId), 5000);
      expect(gw.audit().find((a) => a.rdJobExecId === execId)).toMatchObject({ result: 'completed', exitStatus: 0 });
    });

    it('script step: upload, chmod +x, run with args, rm -f: four connections', async () => {
      const execId = profile.name === 'sshj' ? '7201' : '7202';
      const script = join(gw.dir, `step-${profile.name}.sh`);
      writeFileSync(script, '#!/bin/sh\necho "exec=$RD_JOB_EXECID node=$RD_NODE_NAME args=$*"\necho oops >&2\nexit 3\n');
      const r = await profile.step(script, execId, 'a b', rundeckJobEnv({ execId, node: NODE }));
      expect(r.path).toMatch(new RegExp(`^/tmp/\\d+-${execId}-${NODE}-dispatch-script\\.tmp\\.sh$`));
      const [upload, chmod, run, rm] = r.ops;
      expect(r.ops).toHaveLength(4);
      expect(upload!.failure).toBeNull();
      expect(chmod).toMatchObject({ exit: 0, failure: null });
      expect(run).toMatchObject({ exit: 3, stdout: `exec=${execId} node=${NODE} args=a b\n`, stderr: 'oops\n' });
      expect(rm).toMatchObject({ exit: 0, failure: null });
      expect(r.exit).toBe(3);
      expect(existsSync(r.path)).toBe(false);
      // Four commands, one per connection, in Rundeck's order; the upload completed (not killed).
      await until(() => gw.audit().filter((a) => String(a.command).includes(r.path)).length === 4, 5000);
      const records = gw.audit().filter((a) => String(a.command).includes(r.path));
      expect(records.map((a) => a.command)).toEqual([profile.scpCommand(r.path), `chmod +x ${r.path}`, `${r.path} a b`, `rm -f ${r.path}`]);
      expect(records[0]).toMatchObject({ result: 'completed', exitStatus: 0, killReason: null });
      expect(new Set(records.map((a) => a.client)).size).toBe(4); // four TCP connections (four source ports)
      expect(records.slice(1).every((a) => a.rdJobExecId === execId)).toBe(true);
    });

    it('a command killed by a signal reports exit-status 128+n, never a missing status ("Unknown: null")', async () => {
      const term = await profile.exec('echo before; kill -TERM $$; echo after');
      expect(term).toMatchObject({ exit: 143, stdout: 'before\n', failure: expect.stringMatching(/exit status 143$/) });
      const kill = await profile.exec('kill -KILL $$');
      expect(kill).toMatchObject({ exit: 137, failure: expect.stringMatching(/exit status 137$/) });
      expect([term.failure, kill.failure]).not.toContain('Unknown: null');
    });

    it('keepalive during a silent 3 s command is answered and does not disturb it', async () => {
      // The command prints when its silence starts and ends (epoch ms), then "done".
      const silent = (seconds: number) => `date +%s%3N; sleep ${seconds}; date +%s%3N; echo done`;
      const window = (stdout: string) => stdout.split('\n').slice(0, 2).map(Number) as [number, number];
      const tap = await startTap(gw.port);
      try {
        const r = await profile.exec(silent(3), {}, { keepAliveSeconds: 1, port: tap.port });
        expect(r).toMatchObject({ exit: 0, stderr: '', failure: null });
        expect(r.stdout).toMatch(/^\d+\n\d+\ndone\n$/);
        const [from, to] = window(r.stdout);
        expect(to - from).toBeGreaterThanOrEqual(3000);
        expect(tap.answeredProbes(from, to)).toBeGreaterThanOrEqual(2);
      } finally {
        await tap.close();
      }
      // Control: without keepalive the same silence carries no probe, so the count above is the keepalives.
      const quiet = await startTap(gw.port);
      try {
        const r = await profile.exec(silent(2), {}, { port: quiet.port });
        expect(r.stdout).toMatch(/done\n$/);
        const [from, to] = window(r.stdout);
        expect(quiet.answeredProbes(from, to)).toBe(0);
      } finally {
        await quiet.close();
      }
    }, 30_000);
  });
}

describe('Rundeck client profile sshj: wire details', () => {
  const target = (): SshjTarget => ({ port: gw.port, keyPath: gw.keys.rsaPem });

  it('negotiates curve25519-sha256 (sshj first choice, not a legacy kex) and strict kex, as SSHJ_0.40.0', async () => {
    const r = await sshjExec(target(), 'true');
    expect(r.failure).toBeNull();
    expect(r.wire.offeredKex).toEqual([...offer().kex, 'ext-info-c', 'kex-strict-c-v00@openssh.com']);
    expect(r.wire.offeredKex.slice(0, 2)).toEqual(['curve25519-sha256', 'curve25519-sha256@libssh.org']);
    expect(r.wire.strictKex).toBe(true);
    expect(r.wire.negotiated?.kex).toBe('curve25519-sha256');
    expect(r.wire.negotiated?.serverHostKey).toBe('ssh-ed25519');
    expect(r.wire.negotiated?.cs.cipher).toBe('chacha20-poly1305@openssh.com');
    expect(r.wire.serverIdent).toMatch(/^SSH-2\.0-/);
    expect(r.wire.outbound[0]).toBe('Sending KEXINIT');
    expect(gw.output()).not.toMatch(/"level":(50|60)/);
    expect(SSHJ_VERSION).toBe('0.40.0');
  });

  it('40 env requests, each with want-reply and answered before the next; exec; exit-status, EOF, CLOSE; then DISCONNECT', async () => {
    const env = rundeckJobEnv({ execId: '7301', node: NODE });
    const r = await sshjExec(target(), 'echo hi', env);
    expect(r.failure).toBeNull();
    expect(r.env).toHaveLength(40);
    expect(r.env.every((e) => e.ok && !e.timedOut)).toBe(true);
    // ssh2's log of what went out, in order: 40 env requests, then exec, then the channel close answer and DISCONNECT.
    const sent = r.wire.outbound;
    const envLines = sent.filter((l) => / env: RD_/.test(l));
    expect(envLines).toHaveLength(40);
    const execAt = sent.findIndex((l) => l.includes('exec: echo hi'));
    expect(execAt).toBeGreaterThan(sent.lastIndexOf(envLines.at(-1)!));
    expect(sent.at(-1)).toBe('Sending DISCONNECT (11)');
    expect(sent.some((l) => /CHANNEL_EOF/.test(l))).toBe(false); // sshj never sends EOF on an exec channel
    expect(r.wire.channel).toEqual(['exit-status 0', 'eof', 'close']);
    const perRequest = r.env.map((e) => e.ms).sort((a, b) => a - b);
    console.log(
      `sshj profile: 40 env requests with want-reply took ${r.envMs.toFixed(1)} ms (p50 ${perRequest[20]!.toFixed(2)} ms, max ${perRequest.at(-1)!.toFixed(2)} ms); whole exec connection ${r.ms.toFixed(0)} ms`,
    );
  });

  it('scp upload: `scp -t -r -p` with a quoted path and the T line: content, mode and mtime land', async () => {
    const local = join(gw.dir, 'payload with space.bin');
    const content = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
    writeFileSync(local, content);
    chmodSync(local, 0o750);
    utimesSync(local, 1_700_000_000, 1_600_000_000);
    // A space needs sshj's quotes. (A ' would not survive them: sshj escapes it as \' inside
    // single quotes, which /bin/sh does not undo; Rundeck's /tmp/...dispatch-script paths have none.)
    const remote = join(gw.dir, 'uploaded file.bin');
    const r = await sshjScpUpload(target(), local, remote);
    expect(r.failure).toBeNull();
    expect(r.command).toBe(`scp -t -r -p '${remote}'`);
    expect(readFileSync(remote).equals(content)).toBe(true);
    expect(statSync(remote).mode & 0o777).toBe(0o750);
    expect(Math.floor(statSync(remote).mtimeMs / 1000)).toBe(1_600_000_000);
    // SCPEngine.exit sends CLOSE without EOF and waits (up to 30 s) for the server's CLOSE, which
    // comes at once; scp -t is still waiting for its next line then, so no exit-status precedes it
    // (sshj logs nothing for a missing one and the plugin ignores the copy's status).
    expect(r.wire.channel).toEqual(['close']);
    expect(r.exitStatus).toBeNull();
    expect(r.ms).toBeLessThan(5000);
    expect(r.wire.outbound.some((l) => /CHANNEL_EOF/.test(l))).toBe(false);
    expect(r.wire.outbound.at(-1)).toBe('Sending DISCONNECT (11)');
    await until(() => gw.audit().some((a) => a.command === r.command), 5000);
    expect(gw.audit().find((a) => a.command === r.command)).toMatchObject({ result: 'completed', exitStatus: 0, killReason: null });
  });

  it('sftp (use-sftp): put then get, mode and times preserved', async () => {
    const local = join(gw.dir, 'sftp-local.sh');
    const content = Buffer.concat([Buffer.from('#!/bin/sh\necho sftp\n'), Buffer.alloc(70_000, 0x41)]);
    writeFileSync(local, content);
    chmodSync(local, 0o700);
    utimesSync(local, 1_650_000_000, 1_650_000_000);
    const remote = join(gw.dir, 'sftp-remote.sh');
    const put = await sshjSftpPut(target(), local, remote);
    expect(put.failure).toBeNull();
    expect(readFileSync(remote).equals(content)).toBe(true);
    expect(statSync(remote).mode & 0o777).toBe(0o700);
    expect(Math.floor(statSync(remote).mtimeMs / 1000)).toBe(1_650_000_000);
    const got = await sshjSftpGet(target(), remote);
    expect(got.failure).toBeNull();
    expect(got.content!.equals(content)).toBe(true);
    rmSync(remote);
    const missing = await sshjSftpGet(target(), remote);
    expect(missing.failure).toMatch(/^Unknown: No such file/);
  });

  it('sftp script step (use-sftp): upload, chmod, run, rm', async () => {
    const script = join(gw.dir, 'sftp-step.sh');
    writeFileSync(script, '#!/bin/sh\necho "via sftp $1"\n');
    const r = await sshjScriptStep(target(), { script, execId: '7401', node: NODE, args: 'x', env: rundeckJobEnv({ execId: '7401', node: NODE }), useSftp: true });
    expect(r.failure).toBeNull();
    expect(r.run).toMatchObject({ exit: 0, stdout: 'via sftp x\n' });
    expect(existsSync(r.path)).toBe(false);
  });
});

/**
 * The profile's failure reporting against a deliberately broken server (an ssh2 server in
 * the test): this is what the "never Unknown: null" assertions above would catch.
 */
describe('sshj profile failure reporting (a server that misbehaves on purpose)', () => {
  let server: ssh2.Server;
  let port: number;
  let mode: 'no-status' | 'signal-only' = 'no-status';

  beforeAll(async () => {
    const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
    server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
      client.on('error', () => {});
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () =>
        client.on('session', (accept) => {
          const session = accept();
          session.on('env', (ok) => ok?.());
          session.on('exec', (ok) => {
            const channel = ok();
            channel.write('partial\n');
            if (mode === 'signal-only') channel.exit('KILL', false, '');
            channel.end();
          });
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  it('no exit-status at all surfaces as "Unknown: null" with result code -1', async () => {
    mode = 'no-status';
    const r = await sshjExec({ port, keyPath: gw.keys.ed25519 }, 'anything', { RD_JOB_EXECID: '1' });
    expect(r).toMatchObject({ exitStatus: null, exit: -1, stdout: 'partial\n', failure: 'Unknown: null' });
  });

  it('exit-signal alone is no exit status either: "Unknown: null", and the client closes at once', async () => {
    mode = 'signal-only';
    const r = await sshjExec({ port, keyPath: gw.keys.ed25519 }, 'anything');
    expect(r).toMatchObject({ exitStatus: null, exitSignal: 'KILL', exit: -1, failure: 'Unknown: null' });
    expect(r.wire.channel[0]).toBe('exit-signal KILL');
  });
});

describe(`Rundeck client profile ${JSCH_PROFILE}: sftp`, () => {
  // jsch-ssh never uses SFTP; JSch's ChannelSftp is checked so every profile passes the same sftp check.
  it('JSch ChannelSftp: put then get of 1 MB, byte-identical, audited', async () => {
    const local = join(gw.dir, 'jsch-sftp.bin');
    const content = randomBytes(1024 * 1024);
    writeFileSync(local, content);
    const remote = join(gw.dir, 'jsch-sftp-remote.bin');
    const auditBefore = gw.audit().length;
    const r = await jsch(['--host', '127.0.0.1', '--port', String(gw.port), '--user', 'root', '--key', gw.keys.rsaPem, '--node', NODE, '--mode', 'sftp', '--script', local, '--command', remote]);
    expect(
      r.ops.find((o) => o.op === 'error'),
      r.stderr,
    ).toBeUndefined();
    expect(r.ops.map((o) => o.op)).toEqual(['sftp-put', 'sftp-get', 'done']);
    expect(readFileSync(remote).equals(content)).toBe(true);
    expect(readFileSync(`${local}.back`).equals(content)).toBe(true);
    const sftpRecord = () =>
      gw
        .audit()
        .slice(auditBefore)
        .find((a) => a.command === '(sftp)');
    await until(() => sftpRecord() !== undefined, 5000);
    expect(sftpRecord()).toMatchObject({ result: 'completed' });
  });
});
