import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { createRequire } from 'node:module';
import ssh2, { type Client, type ClientChannel, type NegotiatedAlgorithms, type SFTPWrapper } from 'ssh2';

/**
 * The `sshj` Rundeck client profile: Rundeck 4.16+'s default node executor and file
 * copier (rundeck-plugins/sshj-plugin: sshj-ssh / sshj-scp) on sshj 0.39/0.40, reproduced
 * with the ssh2 client because Debian ships no sshj jar and its JSch cannot do curve25519.
 *
 * What goes on the wire, per operation (each one a NEW TCP connection, like the plugin):
 * - ident `SSH-2.0-SSHJ_0.40.0`; KEXINIT with sshj's DefaultConfig lists in sshj's order
 *   (curve25519-sha256 first) followed by `ext-info-c` and `kex-strict-c-v00@openssh.com`
 *   (ssh2 appends exactly those two, in that order, to any custom kex list, as sshj's
 *   ExtInfoClientFactory and Proposal do). Names ssh2 cannot speak are left out (certs,
 *   @ssh.com DH groups, twofish/serpent/...): an ssh2-based server (execgate) cannot pick
 *   those either, so the negotiated algorithms are the ones real sshj would get.
 * - publickey authentication only (no `none` probe); host key trusted blindly
 *   (the plugin's PromiscuousVerifier).
 * - exec: ONE session channel; every `RD_*` variable as its own `env` request with
 *   want-reply 1, each answer awaited (up to requestTimeoutMs, 30 s as sshj's
 *   ConnectionImpl) before the next; a refusal or timeout is only logged, as the plugin
 *   does; then `exec` with want-reply 1. No stdin, never an EOF from our side. Output is
 *   read until the server's CLOSE; an `exit-signal` makes sshj send CLOSE at once.
 * - scp (sshj-scp): `scp -t -r -p '<path>'` (single-quoted path), then
 *   `T<mtime> 0 <atime> 0`, `C0<perm> <len> <name>`, the bytes and `\0`, each step
 *   acknowledged; then CHANNEL_CLOSE without EOF (SCPEngine.exit) and a wait for the
 *   server's CLOSE; the scp exit status is only logged.
 * - sftp (sshj-scp with use-sftp): subsystem `sftp`, put = open(WRITE|CREAT|TRUNC),
 *   writes, close, setstat(perm, times); get = open(READ), reads, close.
 * - keepalive (sshj's KeepAliveRunner, the plugin's keep-alive-interval): every N s a
 *   GLOBAL_REQUEST `keepalive@openssh.com` with want-reply 1; with keepAliveMaxCount
 *   unanswered in a row the connection dies ("Did not receive any keep-alive response
 *   for X seconds"). Any answer (REQUEST_SUCCESS or REQUEST_FAILURE) counts.
 * - the end: DISCONNECT (BY_APPLICATION, empty description), then the socket closes.
 * - failure reporting (SSHJNodeExecutorPlugin.extractFailure): every failure reason is
 *   "Unknown"; a non-zero exit is "Unknown: Remote command failed with exit status N";
 *   no exit-status at all unboxes a null Integer and surfaces as "Unknown: null" with
 *   result code -1 (on a JDK >= 15 the NullPointerException's "helpful" message takes
 *   null's place; the reason stays Unknown).
 *
 * ssh2 internals used, because its public API cannot express sshj's sequence (its
 * exec({env}) sends env requests with want-reply 0 and does not wait): `_chanMgr.add` +
 * `_protocol.session` open a bare session channel (what ssh2's own openChannel does);
 * `_protocol.env/exec(id, ..., true)` send the requests with want-reply 1 and
 * `channel._callbacks` (the FIFO ssh2 pops on CHANNEL_SUCCESS/FAILURE) carries the
 * answers; `_protocol.ping()` sends keepalive@openssh.com with want-reply 1; and
 * `_protocol._handlers` (looked up per packet) is wrapped to observe the server's
 * channel requests, EOF, CLOSE and global-request answers. Checked against ssh2 1.17.0.
 */

const require = createRequire(import.meta.url);
const constants = require('ssh2/lib/protocol/constants.js') as Record<string, string[]>;
const channelConstants = require('ssh2/lib/Channel.js') as { MAX_WINDOW: number; PACKET_SIZE: number };

export const SSHJ_PROFILE = 'sshj';
export const SSHJ_VERSION = '0.40.0';

/** sshj 0.39/0.40 net.schmizz.sshj.DefaultConfig, in sshj's order (0.39 and 0.40 agree). */
export const SSHJ_ALGORITHMS = {
  kex: [
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'diffie-hellman-group-exchange-sha256',
    'ecdh-sha2-nistp521',
    'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp256',
    'diffie-hellman-group-exchange-sha1',
    'diffie-hellman-group1-sha1',
    'diffie-hellman-group14-sha1',
    'diffie-hellman-group14-sha256',
    'diffie-hellman-group15-sha512',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group17-sha512',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group14-sha256@ssh.com',
    'diffie-hellman-group15-sha256',
    'diffie-hellman-group15-sha256@ssh.com',
    'diffie-hellman-group15-sha384@ssh.com',
    'diffie-hellman-group16-sha256',
    'diffie-hellman-group16-sha384@ssh.com',
    'diffie-hellman-group16-sha512@ssh.com',
    'diffie-hellman-group18-sha512@ssh.com',
  ],
  serverHostKey: [
    'ssh-ed25519-cert-v01@openssh.com',
    'ssh-ed25519',
    'ecdsa-sha2-nistp521-cert-v01@openssh.com',
    'ecdsa-sha2-nistp521',
    'ecdsa-sha2-nistp384-cert-v01@openssh.com',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp256-cert-v01@openssh.com',
    'ecdsa-sha2-nistp256',
    'rsa-sha2-512',
    'rsa-sha2-256',
    'ssh-rsa-cert-v01@openssh.com',
    'ssh-dss-cert-v01@openssh.com',
    'ssh-rsa',
    'ssh-dss',
  ],
  cipher: [
    'chacha20-poly1305@openssh.com',
    'aes128-cbc',
    'aes128-ctr',
    'aes192-cbc',
    'aes192-ctr',
    'aes256-cbc',
    'aes256-ctr',
    'aes128-gcm@openssh.com',
    'aes256-gcm@openssh.com',
    'blowfish-cbc',
    'blowfish-ctr',
    'cast128-cbc',
    'cast128-ctr',
    'idea-cbc',
    'idea-ctr',
    'serpent128-cbc',
    'serpent128-ctr',
    'serpent192-cbc',
    'serpent192-ctr',
    'serpent256-cbc',
    'serpent256-ctr',
    '3des-cbc',
    '3des-ctr',
    'twofish128-cbc',
    'twofish128-ctr',
    'twofish192-cbc',
    'twofish192-ctr',
    'twofish256-cbc',
    'twofish256-ctr',
    'twofish-cbc',
    'arcfour',
    'arcfour128',
    'arcfour256',
  ],
  hmac: [
    'hmac-sha1',
    'hmac-sha1-etm@openssh.com',
    'hmac-sha1-96',
    'hmac-sha1-96@openssh.com',
    'hmac-md5',
    'hmac-md5-etm@openssh.com',
    'hmac-md5-96',
    'hmac-md5-96-etm@openssh.com',
    'hmac-sha2-256',
    'hmac-sha2-256-etm@openssh.com',
    'hmac-sha2-512',
    'hmac-sha2-512-etm@openssh.com',
    'hmac-ripemd160',
    'hmac-ripemd160-etm@openssh.com',
    'hmac-ripemd160-96',
    'hmac-ripemd160@openssh.com',
  ],
  compress: ['none'],
};

/** sshj's lists minus what this ssh2 build cannot speak (see the header). */
export function offer(): Record<keyof typeof SSHJ_ALGORITHMS, string[]> {
  const only = (list: string[], known: string[] | undefined) => list.filter((a) => known?.includes(a));
  return {
    kex: only(SSHJ_ALGORITHMS.kex, constants.SUPPORTED_KEX),
    serverHostKey: only(SSHJ_ALGORITHMS.serverHostKey, constants.SUPPORTED_SERVER_HOST_KEY),
    cipher: only(SSHJ_ALGORITHMS.cipher, constants.SUPPORTED_CIPHER),
    hmac: only(SSHJ_ALGORITHMS.hmac, constants.SUPPORTED_MAC),
    compress: SSHJ_ALGORITHMS.compress,
  };
}

export interface SshjTarget {
  port: number;
  /** Private key file (the plugin reads PEM RSA, OpenSSH ed25519, ...). */
  keyPath: string;
  host?: string;
  user?: string;
  /** The plugin's keep-alive-interval in seconds; 0 (the default) = no keepalive. */
  keepAliveInterval?: number;
  /** The plugin's keep-alive-max-count (sshj's KeepAliveRunner default: 5). */
  keepAliveMaxCount?: number;
  /** sshj's ConnectionImpl timeout for channel open, env, exec and close: 30 000 ms. */
  requestTimeoutMs?: number;
  /** The test's safety net for a whole operation (sshj itself would wait forever for output). */
  deadlineMs?: number;
}

/** What the client saw on the wire for one operation. */
export interface SshjWire {
  /** The server's identification line. */
  serverIdent: string | null;
  negotiated: NegotiatedAlgorithms | null;
  /** The key exchange list our KEXINIT offered (ssh2's "(local) KEX method" log line). */
  offeredKex: string[];
  /** Strict kex (Terrapin countermeasure) in force: both sides offered kex-strict-*. */
  strictKex: boolean;
  /** ssh2's log of every message the client sent ("Outbound: Sending DISCONNECT (11)", ...). */
  outbound: string[];
  /** Server-to-client events on the operation's channel, in order: "exit-status 0", "exit-signal KILL", "eof", "close". */
  channel: string[];
  keepalive: { sent: number; answered: number; rttMs: number[] };
}

export interface EnvReply {
  name: string;
  /** true = CHANNEL_SUCCESS; false = CHANNEL_FAILURE (logged by the plugin, not fatal). */
  ok: boolean;
  timedOut: boolean;
  ms: number;
}

export interface SshjExecResult {
  /** The exit-status the server sent, null if none came. */
  exitStatus: number | null;
  /** The exit-signal's name, if one came. */
  exitSignal: string | null;
  /** Rundeck's result code (exec.exitCode): the exit status, -1 without one. */
  exit: number;
  stdout: string;
  stderr: string;
  /** What Rundeck logs as "SSH command execution error: <failure>", null on success. */
  failure: string | null;
  env: EnvReply[];
  /** Wall time of the whole env sequence (every request and its answer, one after another). */
  envMs: number;
  ms: number;
  wire: SshjWire;
}

export interface SshjCopyResult {
  /** The scp process's exit status, if it arrived before the server's CLOSE (sshj only logs it). */
  exitStatus: number | null;
  /** The exact command line sent (scp) or "sftp" */
  command: string;
  failure: string | null;
  ms: number;
  wire: SshjWire;
}

interface Internals {
  _chanMgr: { add(cb: unknown): number };
  _protocol: {
    session(local: number, window: number, packet: number): void;
    env(remote: number, key: string, val: string, wantReply: boolean): void;
    exec(remote: number, command: string, wantReply: boolean): void;
    ping(): void;
    _handlers: Record<string, (...args: unknown[]) => void>;
  };
}

interface ChannelInternals {
  outgoing: { id: number; state: string };
  incoming: { id: number };
  _callbacks: Array<(hadErr: unknown) => void>;
  subtype?: string;
  allowHalfOpen?: boolean;
}

class Deadline extends Error {}

/** One sshj-like connection: handshake, auth, keepalive, channel plumbing, DISCONNECT. */
class SshjConnection {
  readonly wire: SshjWire = { serverIdent: null, negotiated: null, offeredKex: [], strictKex: false, outbound: [], channel: [], keepalive: { sent: 0, answered: 0, rttMs: [] } };
  private readonly channelEvents = new Map<number, string[]>();
  private readonly pendingKeepalives: number[] = [];
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private failed: Error | null = null;
  private readonly failureListeners = new Set<(err: Error) => void>();

  private constructor(
    readonly client: Client,
    readonly target: Required<Omit<SshjTarget, 'host' | 'user'>> & { host: string; user: string },
  ) {}

  static async open(t: SshjTarget): Promise<SshjConnection> {
    const target = {
      host: t.host ?? '127.0.0.1',
      user: t.user ?? 'root',
      port: t.port,
      keyPath: t.keyPath,
      keepAliveInterval: t.keepAliveInterval ?? 0,
      keepAliveMaxCount: t.keepAliveMaxCount ?? 5,
      requestTimeoutMs: t.requestTimeoutMs ?? 30_000,
      deadlineMs: t.deadlineMs ?? 60_000,
    };
    const client = new ssh2.Client();
    const conn = new SshjConnection(client, target);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        conn.fail(err);
        reject(err);
      };
      client.on('error', onError);
      client.once('close', () => conn.fail(new Error('connection closed by the server')));
      client.once('handshake', (negotiated) => (conn.wire.negotiated = negotiated));
      client.once('ready', () => {
        conn.wire.strictKex = (client as unknown as { _protocol: { _strictMode?: boolean } })._protocol._strictMode === true;
        conn.startKeepalive();
        resolve();
      });
      client.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: readFileSync(target.keyPath),
        ident: `SSHJ_${SSHJ_VERSION}`,
        algorithms: offer() as ssh2.Algorithms,
        authHandler: ['publickey'],
        readyTimeout: target.requestTimeoutMs,
        debug: (line: string) => {
          if (line.startsWith('Outbound: ')) conn.wire.outbound.push(line.slice('Outbound: '.length));
          const ident = /^Remote ident: '(.*)'$/.exec(line);
          if (ident) conn.wire.serverIdent = ident[1]!;
          const kex = /^Handshake: \(local\) KEX method: (.*)$/.exec(line);
          if (kex && conn.wire.offeredKex.length === 0) conn.wire.offeredKex = kex[1]!.split(',');
        },
      });
      conn.observe();
    });
    return conn;
  }

  /** Wraps ssh2's per-packet handlers to see what the server says on our channels and to our keepalives. */
  private observe(): void {
    const handlers = (this.client as unknown as Internals)._protocol._handlers;
    const wrap = (name: string, before: (...args: unknown[]) => void) => {
      const original = handlers[name];
      handlers[name] = (...args: unknown[]) => {
        before(...args);
        original?.(...args);
      };
    };
    const record = (local: unknown, event: string) => {
      const list = this.channelEvents.get(local as number);
      if (list) list.push(event);
    };
    wrap('CHANNEL_REQUEST', (_p, local, type, _wantReply, data) => {
      if (type === 'exit-status') record(local, `exit-status ${String(data)}`);
      else if (type === 'exit-signal') record(local, `exit-signal ${(data as { signal: string }).signal}`);
      else record(local, `request ${String(type)}`);
    });
    wrap('CHANNEL_EOF', (_p, local) => record(local, 'eof'));
    wrap('CHANNEL_CLOSE', (_p, local) => record(local, 'close'));
    const answered = () => {
      const sentAt = this.pendingKeepalives.shift();
      if (sentAt === undefined) return;
      this.wire.keepalive.answered++;
      this.wire.keepalive.rttMs.push(performance.now() - sentAt);
    };
    wrap('REQUEST_SUCCESS', answered);
    wrap('REQUEST_FAILURE', answered);
  }

  /** sshj's KeepAliveRunner: every interval, give up after maxCount unanswered, then send one more. */
  private startKeepalive(): void {
    const { keepAliveInterval, keepAliveMaxCount } = this.target;
    if (keepAliveInterval <= 0) return;
    this.keepaliveTimer = setInterval(() => {
      if (this.pendingKeepalives.length >= keepAliveMaxCount) {
        this.fail(new Error(`Did not receive any keep-alive response for ${keepAliveMaxCount * keepAliveInterval} seconds`));
        this.client.destroy();
        return;
      }
      this.pendingKeepalives.push(performance.now());
      this.wire.keepalive.sent++;
      (this.client as unknown as Internals)._protocol.ping();
    }, keepAliveInterval * 1000);
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const listener of this.failureListeners) listener(this.failed);
  }

  /** Rejects when the connection dies or the operation's deadline passes. */
  guard<T>(work: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      const timer = setTimeout(() => reject(new Deadline(`${what}: no end after ${this.target.deadlineMs} ms (test deadline)`)), this.target.deadlineMs);
      const onFail = (err: Error) => reject(err);
      this.failureListeners.add(onFail);
      work.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        this.failureListeners.delete(onFail);
      });
    });
  }

  /** Opens one bare session channel (CHANNEL_OPEN "session"), sshj's startSession. */
  openSession(): Promise<ClientChannel> {
    const opened = new Promise<ClientChannel>((resolve, reject) => {
      const onOpen = (err: Error | undefined, channel: ClientChannel) => (err ? reject(err) : resolve(channel));
      (onOpen as unknown as { type: string }).type = 'session';
      const internals = this.client as unknown as Internals;
      const local = internals._chanMgr.add(onOpen);
      if (local === -1) return reject(new Error('No free channels available'));
      this.channelEvents.set(local, []);
      internals._protocol.session(local, channelConstants.MAX_WINDOW, channelConstants.PACKET_SIZE);
    });
    return this.withTimeout(opened, 'channel open');
  }

  events(channel: ClientChannel): string[] {
    return this.channelEvents.get((channel as unknown as ChannelInternals).incoming.id) ?? [];
  }

  /** Sends one channel request with want-reply 1 and waits for its answer: true = SUCCESS. */
  request(channel: ClientChannel, send: (remoteId: number) => void): Promise<boolean> {
    const chan = channel as unknown as ChannelInternals;
    const answer = new Promise<boolean>((resolve) => chan._callbacks.push((hadErr) => resolve(!hadErr)));
    send(chan.outgoing.id);
    return this.withTimeout(answer, 'channel request');
  }

  env(channel: ClientChannel, name: string, value: string): Promise<boolean> {
    return this.request(channel, (id) => (this.client as unknown as Internals)._protocol.env(id, name, value, true));
  }

  exec(channel: ClientChannel, command: string): Promise<boolean> {
    return this.request(channel, (id) => (this.client as unknown as Internals)._protocol.exec(id, command, true)).then((ok) => {
      const chan = channel as unknown as ChannelInternals;
      chan.subtype = 'exec';
      chan.allowHalfOpen = true; // sshj never answers the server's EOF with its own
      return ok;
    });
  }

  private withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Timeout expired: ${what} (${this.target.requestTimeoutMs} ms)`)), this.target.requestTimeoutMs);
      work.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  }

  /** sshClient.disconnect(): keepalive stopped, DISCONNECT(BY_APPLICATION), socket closed. */
  async disconnect(): Promise<void> {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    const closed = new Promise<void>((resolve) => {
      const sock = (this.client as unknown as { _sock?: { destroyed?: boolean } })._sock;
      if (!sock || sock.destroyed) return resolve();
      this.client.once('close', () => resolve());
    });
    this.client.end();
    const timer = setTimeout(() => this.client.destroy(), 5000);
    await closed;
    clearTimeout(timer);
  }
}

/** Reads a session channel to its CLOSE, as sshj's StreamCopiers + join() do. */
function drain(conn: SshjConnection, channel: ClientChannel): { done: Promise<void>; stdout: Buffer[]; stderr: Buffer[] } {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  channel.on('data', (d: Buffer) => stdout.push(d));
  channel.stderr.on('data', (d: Buffer) => stderr.push(d));
  channel.on('error', () => {});
  channel.stderr.on('error', () => {});
  // sshj's SessionChannel answers an exit-signal with its own CLOSE at once.
  channel.on('exit', (code: number | null) => {
    if (code === null) channel.close();
  });
  const done = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  return { done: conn.guard(done, 'command'), stdout, stderr };
}

function exitOf(events: string[]): { exitStatus: number | null; exitSignal: string | null } {
  const status = events.find((e) => e.startsWith('exit-status '));
  const signal = events.find((e) => e.startsWith('exit-signal '));
  return { exitStatus: status ? Number(status.slice('exit-status '.length)) : null, exitSignal: signal ? signal.slice('exit-signal '.length) : null };
}

/**
 * One sshj-ssh node step: a new connection, one session channel, every env variable
 * with want-reply (awaited one by one), exec, output to the server's CLOSE, DISCONNECT.
 */
export async function sshjExec(target: SshjTarget, command: string, env: Record<string, string> = {}): Promise<SshjExecResult> {
  const started = performance.now();
  const conn = await SshjConnection.open(target);
  const result: SshjExecResult = { exitStatus: null, exitSignal: null, exit: -1, stdout: '', stderr: '', failure: null, env: [], envMs: 0, ms: 0, wire: conn.wire };
  try {
    const channel = await conn.guard(conn.openSession(), 'channel open');
    const envStarted = performance.now();
    for (const [name, value] of Object.entries(env)) {
      const t0 = performance.now();
      try {
        const ok = await conn.guard(conn.env(channel, name, value), `env ${name}`);
        result.env.push({ name, ok, timedOut: false, ms: performance.now() - t0 });
      } catch (err) {
        if (err instanceof Deadline || !/^Timeout expired/.test((err as Error).message)) throw err;
        result.env.push({ name, ok: false, timedOut: true, ms: performance.now() - t0 }); // logged, not fatal
      }
    }
    result.envMs = performance.now() - envStarted;
    const output = drain(conn, channel);
    if (!(await conn.guard(conn.exec(channel, command), 'exec'))) throw new Error('Command execution failed: Request failed');
    await output.done;
    result.stdout = Buffer.concat(output.stdout).toString();
    result.stderr = Buffer.concat(output.stderr).toString();
    const exit = exitOf(conn.events(channel));
    result.exitStatus = exit.exitStatus;
    result.exitSignal = exit.exitSignal;
    conn.wire.channel = conn.events(channel);
    if (exit.exitStatus === null) {
      // `exitStatus = cmd.getExitStatus()` unboxes null: a NullPointerException without a message.
      result.failure = 'Unknown: null';
    } else {
      result.exit = exit.exitStatus;
      if (exit.exitStatus !== 0) result.failure = `Unknown: Remote command failed with exit status ${exit.exitStatus}`;
    }
  } catch (err) {
    if (err instanceof Deadline) throw err;
    result.failure = `Unknown: ${(err as Error).message}`;
  } finally {
    await conn.disconnect();
    result.ms = performance.now() - started;
  }
  return result;
}

/** The scp command line sshj sends for an upload (ScpCommandLine, SingleQuote escaping). */
export function sshjScpCommand(remotePath: string): string {
  return `scp -t -r -p '${remotePath.replace(/'/g, "\\'")}'`;
}

/** sshj-scp's upload of one file to a full remote path (SCPUploadClient.copy with preserved times). */
export async function sshjScpUpload(target: SshjTarget, localPath: string, remotePath: string): Promise<SshjCopyResult> {
  const started = performance.now();
  const conn = await SshjConnection.open(target);
  const command = sshjScpCommand(remotePath);
  const result: SshjCopyResult = { exitStatus: null, command, failure: null, ms: 0, wire: conn.wire };
  try {
    const channel = await conn.guard(conn.openSession(), 'channel open');
    const inbound: Buffer[] = [];
    let waiting: (() => void) | null = null;
    channel.on('data', (d: Buffer) => {
      inbound.push(d);
      waiting?.();
    });
    channel.stderr.on('data', () => {});
    channel.on('error', () => {});
    const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
    const readByte = async (): Promise<number> => {
      for (;;) {
        const head = inbound[0];
        if (head && head.length > 0) {
          const b = head[0]!;
          if (head.length === 1) inbound.shift();
          else inbound[0] = head.subarray(1);
          return b;
        }
        if (head) inbound.shift();
        const more = new Promise<'data' | 'closed'>((resolve) => {
          waiting = () => resolve('data');
          void closed.then(() => resolve('closed'));
        });
        if ((await conn.guard(more, 'scp ack')) === 'closed' && inbound.length === 0) return -1;
        waiting = null;
      }
    };
    const check = async (what: string) => {
      const code = await readByte();
      if (code === 0) return;
      if (code === -1) throw new Error(`EOF while expecting response to protocol message (${what})`);
      let message = '';
      for (let b = await readByte(); b !== -1 && b !== 0x0a; b = await readByte()) message += String.fromCharCode(b);
      if (code === 1 || code === 2) throw new Error(`Remote SCP command had error: ${message}`);
      throw new Error('Received unknown response code');
    };
    const send = (data: Buffer | string) => new Promise<void>((resolve) => channel.write(data, () => resolve()));
    if (!(await conn.guard(conn.exec(channel, command), 'exec'))) throw new Error('Request failed');
    await check('Start status OK');
    const st = statSync(localPath);
    await send(`T${Math.floor(st.mtimeMs / 1000)} 0 ${Math.floor(st.atimeMs / 1000)} 0\n`);
    await check('Message ACK received');
    const content = readFileSync(localPath);
    await send(`C0${(st.mode & 0o7777).toString(8)} ${content.length} ${basename(localPath)}\n`);
    await check('Message ACK received');
    await send(content);
    await send(Buffer.from([0]));
    await check('Remote agrees transfer done');
    // SCPEngine.exit(): CHANNEL_CLOSE (no EOF) and a wait for the server's CLOSE, up to the timeout.
    channel.close();
    await conn.guard(Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, conn.target.requestTimeoutMs).unref())]), 'scp close');
    conn.wire.channel = conn.events(channel);
    result.exitStatus = exitOf(conn.wire.channel).exitStatus;
  } catch (err) {
    if (err instanceof Deadline) throw err;
    result.failure = `Unknown: File copy operation failed: ${(err as Error).message}`;
  } finally {
    await conn.disconnect();
    result.ms = performance.now() - started;
  }
  return result;
}

function sftpOpen(conn: SshjConnection): Promise<SFTPWrapper> {
  return conn.guard(new Promise<SFTPWrapper>((resolve, reject) => conn.client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp)))), 'sftp subsystem');
}

const sftpCall = <T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void) => new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

/** sshj-scp with use-sftp: SFTPClient.put (open, write, close, setstat of mode and times). */
export async function sshjSftpPut(target: SshjTarget, localPath: string, remotePath: string): Promise<SshjCopyResult> {
  const started = performance.now();
  const conn = await SshjConnection.open(target);
  const result: SshjCopyResult = { exitStatus: null, command: 'sftp', failure: null, ms: 0, wire: conn.wire };
  try {
    const sftp = await sftpOpen(conn);
    const st = statSync(localPath);
    const content = readFileSync(localPath);
    const handle = await conn.guard(
      sftpCall<Buffer>((cb) => sftp.open(remotePath, 'w', cb)),
      'sftp open',
    );
    for (let off = 0; off < content.length; off += 32 * 1024) {
      const len = Math.min(32 * 1024, content.length - off);
      await conn.guard(
        sftpCall<void>((cb) => sftp.write(handle, content, off, len, off, (err) => cb(err, undefined))),
        'sftp write',
      );
    }
    await conn.guard(
      sftpCall<void>((cb) => sftp.close(handle, (err) => cb(err, undefined))),
      'sftp close',
    );
    const attrs = { mode: st.mode & 0o7777, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
    await conn.guard(
      sftpCall<void>((cb) => sftp.setstat(remotePath, attrs, (err) => cb(err, undefined))),
      'sftp setstat',
    );
    sftp.end();
  } catch (err) {
    if (err instanceof Deadline) throw err;
    result.failure = `Unknown: File copy operation failed: ${(err as Error).message}`;
  } finally {
    await conn.disconnect();
    result.ms = performance.now() - started;
  }
  return result;
}

/** SFTPClient.get: open(READ), read to the end, close. */
export async function sshjSftpGet(target: SshjTarget, remotePath: string): Promise<{ content: Buffer | null; failure: string | null; wire: SshjWire }> {
  const conn = await SshjConnection.open(target);
  try {
    const sftp = await sftpOpen(conn);
    const handle = await conn.guard(
      sftpCall<Buffer>((cb) => sftp.open(remotePath, 'r', cb)),
      'sftp open',
    );
    const chunks: Buffer[] = [];
    for (let pos = 0; ;) {
      const buf = Buffer.alloc(32 * 1024);
      const n = await conn
        .guard(new Promise<number>((resolve, reject) => sftp.read(handle, buf, 0, buf.length, pos, (err, bytes) => (err ? reject(err) : resolve(bytes)))), 'sftp read')
        .catch((err: Error & { code?: number }) => {
          if (err.code === 1) return 0; // SSH_FX_EOF
          throw err;
        });
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      pos += n;
    }
    await conn.guard(
      sftpCall<void>((cb) => sftp.close(handle, (err) => cb(err, undefined))),
      'sftp close',
    );
    sftp.end();
    return { content: Buffer.concat(chunks), failure: null, wire: conn.wire };
  } catch (err) {
    if (err instanceof Deadline) throw err;
    return { content: null, failure: `Unknown: ${(err as Error).message}`, wire: conn.wire };
  } finally {
    await conn.disconnect();
  }
}

export interface SshjStepResult {
  /** The remote script path: /tmp/<n>-<execid>-<node>-dispatch-script.tmp.sh */
  path: string;
  upload: SshjCopyResult;
  chmod: SshjExecResult | null;
  run: SshjExecResult | null;
  rm: SshjExecResult | null;
  /** The step's result: the script's exit status, -1 when it did not run. */
  exit: number;
  failure: string | null;
}

/**
 * A Rundeck script step through sshj-scp + sshj-ssh: upload (scp, or sftp with useSftp),
 * `chmod +x`, the script with its arguments, `rm -f`: four connections; env on the execs.
 */
export async function sshjScriptStep(
  target: SshjTarget,
  step: { script: string; execId: string; node: string; args?: string; env?: Record<string, string>; useSftp?: boolean },
): Promise<SshjStepResult> {
  const path = `/tmp/${1 + Math.floor(Math.random() * 9999)}-${step.execId}-${step.node}-dispatch-script.tmp.sh`;
  const upload = step.useSftp ? await sshjSftpPut(target, step.script, path) : await sshjScpUpload(target, step.script, path);
  const result: SshjStepResult = { path, upload, chmod: null, run: null, rm: null, exit: -1, failure: upload.failure };
  if (upload.failure) return result;
  result.chmod = await sshjExec(target, `chmod +x ${path}`, step.env);
  if (result.chmod.failure) {
    result.failure = result.chmod.failure;
    return result;
  }
  result.run = await sshjExec(target, step.args ? `${path} ${step.args}` : path, step.env);
  result.exit = result.run.exit;
  result.failure = result.run.failure;
  result.rm = await sshjExec(target, `rm -f ${path}`, step.env);
  return result;
}

/**
 * The ~40 variables Rundeck 5 exports for a job step on one node (its data context
 * flattened to RD_*: job, node attributes, options, a secure option among them, globals).
 */
export function rundeckJobEnv(o: { execId: string; node: string; jobId?: string; retryAttempt?: number; secret?: string }): Record<string, string> {
  const jobId = o.jobId ?? '5b0a6f1e-3c1d-4f3e-9a7e-4d1c2b3a4f5e';
  const retry = o.retryAttempt ?? 0;
  return {
    RD_JOB_ID: jobId,
    RD_JOB_EXECID: o.execId,
    RD_JOB_NAME: 'deploy',
    RD_JOB_GROUP: 'ops/releases',
    RD_JOB_PROJECT: 'prod',
    RD_JOB_USERNAME: 'admin',
    RD_JOB_USER_NAME: 'admin',
    RD_JOB_LOGLEVEL: 'INFO',
    RD_JOB_URL: `https://rundeck.example/project/prod/execution/follow/${o.execId}`,
    RD_JOB_SERVERURL: 'https://rundeck.example/',
    RD_JOB_SERVERUUID: '9f1c2d3e-0000-4000-8000-00000000abcd',
    RD_JOB_EXECUTIONTYPE: 'user',
    RD_JOB_RETRYATTEMPT: String(retry),
    RD_JOB_WASRETRY: String(retry > 0),
    RD_JOB_RETRYINITIALEXECID: retry > 0 ? String(Number(o.execId) - retry) : '',
    RD_JOB_THREADCOUNT: '1',
    RD_JOB_FILTER: `name: ${o.node}`,
    RD_JOB_SUCCESSONEMPTYNODEFILTER: 'false',
    RD_NODE_NAME: o.node,
    RD_NODE_HOSTNAME: '127.0.0.1',
    RD_NODE_USERNAME: 'root',
    RD_NODE_DESCRIPTION: 'execgate VIP',
    RD_NODE_TAGS: 'gateway,prod',
    RD_NODE_OS_NAME: 'Linux',
    RD_NODE_OS_FAMILY: 'unix',
    RD_NODE_OS_ARCH: 'amd64',
    RD_NODE_OS_VERSION: '6.1.0',
    RD_NODE_NODE_EXECUTOR: 'sshj-ssh',
    RD_NODE_FILE_COPIER: 'sshj-scp',
    RD_NODE_SSH_KEY_STORAGE_PATH: 'keys/project/prod/rundeck.pem',
    RD_NODE_ROLE: 'batch',
    RD_OPTION_VERSION: '2.4.1',
    RD_OPTION_ENVIRONMENT: 'production',
    RD_OPTION_DRY_RUN: 'false',
    RD_OPTION_NOTES: 'a value with spaces, "quotes" and $dollars',
    // A secure option: Rundeck sends it like any other option.
    RD_OPTION_DB_PASSWORD: o.secret ?? 's3cr3t-pa55',
    RD_OPTION_TICKET: 'OPS-1234',
    RD_GLOBALS_REGION: 'eu-west-1',
    RD_GLOBALS_TEAM: 'platform',
    RD_GLOBALS_SLACK_CHANNEL: '#deploys',
  };
}
