import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createHttpApp, type HttpAppDeps } from '../../src/http/app.js';
import { listenHttp, type HttpListener } from '../../src/http/server.js';
import { defaultAccessPolicy } from '../../src/http/access.js';
import { parseConfig } from '../../src/config/load.js';
import { createMetrics } from '../../src/metrics.js';
import { CommandRegistry } from '../../src/exec/registry.js';
import { replicaPathProblem } from '../../src/cluster/scriptPath.js';
import { ReplicaRefused, ScriptReceiver } from '../../src/cluster/scriptReceiver.js';
import { ScriptReplicator } from '../../src/cluster/scriptReplica.js';
import { PEER_HEADERS, PEER_SCRIPT_PATH } from '../../src/cluster/peerEndpoint.js';
import { dispatchScriptMessage, dispatchScriptTransfer } from '../../src/exec/dispatchScript.js';
import { scriptReplicationSchema } from '../../src/config/cluster.js';
import { ScpAckGate } from '../../src/cluster/scpAckGate.js';
import { PassThrough } from 'node:stream';
import { createScriptReplication } from '../../src/cluster/replication.js';
import { parseCluster } from '../../src/config/clusterLoad.js';

const TOKEN = 'the-cluster-shared-token-0123456789';
const isRoot = process.geteuid?.() === 0;
const me = { uid: process.geteuid!(), gid: process.getegid!() };

/** A logger whose lines the test can read. */
function memoryLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

const scriptName = (n = 1) => `${n}-20231201-web01-dispatch-script.tmp.sh`;

describe('replicaPathProblem: where a peer may write', () => {
  const dirs = ['/tmp', '/var/tmp/rundeck'];
  it('accepts a dispatch-script name directly in a configured directory', () => {
    expect(replicaPathProblem(`/tmp/${scriptName()}`, dirs)).toBeNull();
    expect(replicaPathProblem('/var/tmp/rundeck/12-abc-node-dispatch-script.tmp', dirs)).toBeNull();
  });
  it.each([
    ['relative', `tmp/${scriptName()}`, /normalised absolute/],
    ['dot-dot', `/tmp/../etc/${scriptName()}`, /normalised absolute/],
    ['dot-dot into a configured dir', `/var/tmp/x/../rundeck/${scriptName()}`, /normalised absolute/],
    ['double slash', `/tmp//${scriptName()}`, /normalised absolute/],
    ['a subdirectory', `/tmp/sub/${scriptName()}`, /not directly in \/tmp or \/var\/tmp\/rundeck/],
    ['another directory', `/etc/${scriptName()}`, /not directly in/],
    ['not a dispatch script', '/tmp/passwd', /not a Rundeck dispatch-script path/],
    ['a newline', `/tmp/${scriptName()}\n`, /control characters/],
    ['empty', '', /no path/],
  ])('refuses %s', (_what, path, why) => {
    expect(replicaPathProblem(path, dirs)).toMatch(why);
  });
});

describe('dispatchScriptTransfer: which commands are Rundeck uploads, chmods and cleanups', () => {
  const p = `/tmp/${scriptName()}`;
  it.each([
    [`scp -t ${p}`, { op: 'upload', path: p }],
    [`scp -t -- ${p}`, { op: 'upload', path: p }],
    [`scp -p -t ${p}`, { op: 'upload', path: p }],
    [`/usr/bin/scp -t '${p}'`, { op: 'upload', path: p }],
    [`rm -f ${p}`, { op: 'remove', path: p }],
    [`rm ${p}`, { op: 'remove', path: p }],
    [`scp -f ${p}`, null],
    [`scp -r -t ${p}`, null],
    [`scp -d -t ${p}`, null],
    [`scp -t ${p} /tmp/other`, null],
    [`rm -rf ${p}`, null],
    [`chmod +x ${p}`, { op: 'mode', path: p }],
    [`chmod u+x ${p}`, { op: 'mode', path: p }],
    [`chmod 0700 ${p}`, { op: 'mode', path: p }],
    [`chmod +x ${p} /tmp/other`, null],
    [`chmod -R +x ${p}`, null],
    [`chmod +x /tmp/notes.txt`, null],
    [`${p} arg`, null],
    ['scp -t /tmp/notes.txt', null],
  ])('%s', (line, expected) => {
    expect(dispatchScriptTransfer(line)).toEqual(expected);
  });
});

describe('the exit-75 message', () => {
  it('says why when the node knows, and keeps the phrase people look for', () => {
    const known = dispatchScriptMessage('gw2', '/tmp/x', 'a symbolic link is there');
    expect(known).toContain('the script was uploaded to another node before a failover; retry the step');
    expect(known).toContain('no copy reached gw2: a symbolic link is there');
    const unknown = dispatchScriptMessage('gw2', '/tmp/x');
    expect(unknown).toContain('the upload was not replicated to this node: peer transfer failed or the file was uploaded before this node joined');
  });
});

describe('the cluster file key', () => {
  it('leadership.scriptReplication defaults and refuses a directory with ..', () => {
    expect(scriptReplicationSchema.parse({})).toEqual({ enabled: true, maxBytes: 1048576, timeoutMs: 2000, directories: ['/tmp'] });
    expect(scriptReplicationSchema.safeParse({ directories: ['/tmp/../etc'] }).success).toBe(false);
    expect(scriptReplicationSchema.safeParse({ directories: ['/tmp/'] }).success).toBe(false);
  });
});

describe('ScriptReceiver with real files', () => {
  let dir: string;
  let markers: string;
  let clock: number;
  const receiver = (maxBytes = 1024) => new ScriptReceiver({ node: 'gw2', directories: [dir], maxBytes, markerDir: markers, log: memoryLog().log, now: () => clock });
  const upload = (path: string, content = '#!/bin/sh\necho hi\n', mode = 0o750) => ({ path, mode, uid: me.uid, gid: me.gid, content: Buffer.from(content) });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'execgate-replica-'));
    markers = join(dir, '.markers');
    clock = 1_000_000;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the copy with the mode and owner it was sent, then confirms an identical retry', async () => {
    const r = receiver();
    const path = join(dir, scriptName());
    expect(await r.receive(upload(path))).toBe('written');
    const st = lstatSync(path);
    expect(st.mode & 0o7777).toBe(0o750);
    expect([st.uid, st.gid]).toEqual([me.uid, me.gid]);
    expect(readFileSync(path, 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(await r.receive(upload(path))).toBe('unchanged');
    // No temp file is left beside it.
    expect(readdirSync(dir).filter((n) => n.includes('execgate-replica'))).toEqual([]);
  });

  it('drops setuid/setgid bits', async () => {
    const path = join(dir, scriptName());
    await receiver().receive(upload(path, 'x', 0o6755));
    expect(lstatSync(path).mode & 0o7777).toBe(0o755);
  });

  it('replaces an older copy of the same owner with new content', async () => {
    const r = receiver();
    const path = join(dir, scriptName());
    await r.receive(upload(path, 'old'));
    expect(await r.receive(upload(path, 'new content'))).toBe('written');
    expect(readFileSync(path, 'utf8')).toBe('new content');
  });

  it('refuses a symbolic link at the target and leaves what it points to alone', async () => {
    const r = receiver();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    const path = join(dir, scriptName());
    symlinkSync(victim, path);
    const err = await r.receive(upload(path)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicaRefused);
    expect((err as ReplicaRefused).status).toBe(409);
    expect((err as Error).message).toMatch(/symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(path).isSymbolicLink()).toBe(true);
    expect(r.whyMissing(path)).toMatch(/symbolic link/);
  });

  it('refuses a directory given as the configured one when it is a symbolic link', async () => {
    const real = join(dir, 'real');
    mkdirSync(real);
    const link = join(dir, 'link');
    symlinkSync(real, link);
    const r = new ScriptReceiver({ node: 'gw2', directories: [link], maxBytes: 1024, markerDir: markers, log: memoryLog().log });
    await expect(r.receive(upload(join(link, scriptName())))).rejects.toMatchObject({ status: 409 });
    expect(readdirSync(real)).toEqual([]);
  });

  it.runIf(isRoot)('refuses to replace a file owned by another uid (root only: needs chown)', async () => {
    const r = receiver();
    const path = join(dir, scriptName());
    writeFileSync(path, 'theirs');
    chownSync(path, 4321, 4321);
    await expect(r.receive(upload(path))).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/owned by uid 4321/) });
    expect(readFileSync(path, 'utf8')).toBe('theirs');
    await expect(r.remove(path, me.uid)).rejects.toMatchObject({ status: 409 });
    expect(existsSync(path)).toBe(true);
  });

  it.runIf(isRoot)('writes with the uid and gid sent (root only)', async () => {
    const path = join(dir, scriptName());
    chmodSync(dir, 0o1777);
    await receiver().receive({ ...upload(path), uid: 4321, gid: 4322 });
    const st = lstatSync(path);
    expect([st.uid, st.gid]).toEqual([4321, 4322]);
  });

  it('refuses more than maxBytes and bad paths', async () => {
    const r = receiver(8);
    await expect(r.receive(upload(join(dir, scriptName()), '123456789'))).rejects.toMatchObject({ status: 413 });
    await expect(r.receive(upload(join(dir, 'sub', scriptName()), 'x'))).rejects.toMatchObject({ status: 400 });
    await expect(r.receive(upload(`${dir}/../${scriptName()}`, 'x'))).rejects.toMatchObject({ status: 400 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('removes a copy on rm (idempotent) and forgets its marker', async () => {
    const r = receiver();
    const path = join(dir, scriptName());
    await r.receive(upload(path));
    expect(readdirSync(markers)).toHaveLength(1);
    expect(await r.remove(path, me.uid)).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(markers)).toEqual([]);
    expect(await r.remove(path, me.uid)).toBe(false);
  });

  it('the sweep deletes a copy nobody removed after an hour, only the file it wrote', async () => {
    const r = receiver();
    const kept = join(dir, scriptName(1));
    const stale = join(dir, scriptName(2));
    const replaced = join(dir, scriptName(3));
    await r.receive(upload(kept));
    clock -= 2 * 3_600_000; // these two were received two hours ago
    await r.receive(upload(stale));
    await r.receive(upload(replaced));
    clock += 2 * 3_600_000;
    // Someone else's file under the name since: a different inode, not the copy.
    rmSync(replaced);
    writeFileSync(replaced, 'new upload');
    expect(await r.sweep()).toBe(1);
    expect(existsSync(stale)).toBe(false);
    expect(readFileSync(replaced, 'utf8')).toBe('new upload');
    expect(existsSync(kept)).toBe(true);
    expect(readdirSync(markers)).toHaveLength(1);
  });
});

/** The whole HTTP app (as a node serves it) with a receiver on a temp dir. */
async function startPeerApp(dir: string, opts: { token?: string; maxBytes?: number } = {}) {
  const { log, lines } = memoryLog();
  const config = parseConfig({ hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: join(dir, 'audit.jsonl') }, http: { token: opts.token ?? TOKEN } }, 'test.yaml', dir);
  const receiver = new ScriptReceiver({ node: 'gw2', directories: [dir], maxBytes: opts.maxBytes ?? 1024, markerDir: join(dir, '.markers'), log });
  const app = createHttpApp({
    node: 'gw2',
    config,
    leadership: {} as HttpAppDeps['leadership'],
    registry: new CommandRegistry(),
    health: { check: async () => ({ ok: true, reason: null, checks: {} }) } as unknown as HttpAppDeps['health'],
    metrics: createMetrics('gw2', 'native'),
    hostKeys: [],
    listen: () => [],
    startedAt: Date.now(),
    log,
    access: defaultAccessPolicy(opts.token ?? TOKEN),
    scriptReceiver: receiver,
  });
  const server = await listenHttp(app, '127.0.0.1', 0);
  return { server, lines, receiver, url: `http://127.0.0.1:${server.port}` };
}

describe('PUT/DELETE /peer/dispatch-script on the node HTTP app', () => {
  let dir: string;
  let peer: { server: HttpListener; lines: Array<Record<string, unknown>>; url: string };
  const path = () => join(dir, scriptName());
  const headers = (extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${TOKEN}`,
    [PEER_HEADERS.path]: encodeURIComponent(path()),
    [PEER_HEADERS.mode]: '750',
    [PEER_HEADERS.uid]: String(me.uid),
    [PEER_HEADERS.gid]: String(me.gid),
    ...extra,
  });
  const put = (h: Record<string, string>, body: string | Buffer = '#!/bin/sh\n') =>
    fetch(`${peer.url}${PEER_SCRIPT_PATH}`, { method: 'PUT', headers: h, body: typeof body === 'string' ? body : new Uint8Array(body) });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'execgate-peer-'));
    peer = await startPeerApp(dir);
  });
  afterEach(async () => {
    await peer.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the copy with the token', async () => {
    const res = await put(headers());
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: 'written' });
    expect(lstatSync(path()).mode & 0o777).toBe(0o750);
  });

  it('401 without the token or with a wrong one, with a log line naming the peer address; nothing written', async () => {
    const { authorization: _drop, ...noToken } = headers();
    const res = await put(noToken);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toMatch(/no bearer token/);
    const wrong = await put(headers({ authorization: 'Bearer not-the-cluster-token-at-all' }));
    expect(wrong.status).toBe(401);
    const del = await fetch(`${peer.url}${PEER_SCRIPT_PATH}`, { method: 'DELETE', headers: { [PEER_HEADERS.path]: encodeURIComponent(path()), [PEER_HEADERS.uid]: '0' } });
    expect(del.status).toBe(401);
    expect(existsSync(path())).toBe(false);
    const refusals = peer.lines.filter((l) => String(l.msg).includes('without the cluster token'));
    expect(refusals).toHaveLength(3);
    expect(refusals[0]).toMatchObject({ peer: '127.0.0.1', why: 'no bearer token' });
    expect(refusals[1]).toMatchObject({ peer: '127.0.0.1', why: 'wrong bearer token' });
  });

  it('413 over maxBytes, by Content-Length and by a chunked body', async () => {
    const big = Buffer.alloc(2000, 'a');
    const res = await put(headers(), big);
    expect(res.status).toBe(413);
    // A streamed body has no Content-Length: the cap is applied while reading.
    const chunked = await fetch(`${peer.url}${PEER_SCRIPT_PATH}`, {
      method: 'PUT',
      headers: headers(),
      body: new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(big));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(existsSync(path())).toBe(false);
  });

  it('400 for a bad path or missing headers', async () => {
    const dotdot = await put(headers({ [PEER_HEADERS.path]: encodeURIComponent(`${dir}/../${scriptName()}`) }));
    expect(dotdot.status).toBe(400);
    const other = await put(headers({ [PEER_HEADERS.path]: encodeURIComponent(join(dir, 'authorized_keys')) }));
    expect(other.status).toBe(400);
    expect(((await other.json()) as { error: string }).error).toMatch(/not a Rundeck dispatch-script path/);
    const badMode = await put(headers({ [PEER_HEADERS.mode]: '999' }));
    expect(badMode.status).toBe(400);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses (409) a symbolic link at the target', async () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, path());
    const res = await put(headers(), 'overwrite');
    expect(res.status).toBe(409);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
  });

  it('DELETE removes the copy', async () => {
    expect((await put(headers())).status).toBe(200);
    const del = await fetch(`${peer.url}${PEER_SCRIPT_PATH}`, { method: 'DELETE', headers: headers() });
    expect(await del.json()).toEqual({ removed: true });
    expect(existsSync(path())).toBe(false);
  });
});

describe('ScriptReplicator against real peers', () => {
  let src: string;
  let peerDir: string;
  let peer: Awaited<ReturnType<typeof startPeerApp>>;
  let silent: Server;
  let silentPort: number;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    // A peer that accepts and never answers (a hung node).
    silent = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });
  beforeEach(async () => {
    src = mkdtempSync(join(tmpdir(), 'execgate-src-'));
    peerDir = mkdtempSync(join(tmpdir(), 'execgate-dst-'));
    peer = await startPeerApp(peerDir);
  });
  afterEach(async () => {
    await peer.server.close();
    rmSync(src, { recursive: true, force: true });
    rmSync(peerDir, { recursive: true, force: true });
  });

  const replicator = (peers: Array<{ name: string; url: string }>, extra: { token?: string; maxBytes?: number } = {}) => {
    const { log, lines } = memoryLog();
    const metrics = createMetrics('gw1', 'native');
    const r = new ScriptReplicator({
      node: 'gw1',
      peers,
      token: 'token' in extra ? extra.token : TOKEN,
      maxBytes: extra.maxBytes ?? 1024,
      timeoutMs: 300,
      directories: [peerDir],
      log,
      metrics,
    });
    return { r, lines, metrics };
  };
  const count = async (metrics: ReturnType<typeof createMetrics>) => Object.fromEntries((await metrics.scriptReplication.get()).values.map((v) => [v.labels.result, v.value]));

  it('copies to a peer; a hung peer and a refusing peer are logged with why, and counted', async () => {
    const path = join(peerDir, scriptName());
    writeFileSync(path, '#!/bin/sh\necho replicated\n', { mode: 0o700 });
    // Sender and peer share this host's directory: the peer finds an identical file and
    // answers "unchanged" (an idempotent retry), which is success. The integration test
    // (test/integration/script-replication.test.ts) gives the receiver its own /tmp.
    const { r, lines, metrics } = replicator([
      { name: 'gw2', url: peer.url },
      { name: 'hung', url: `http://127.0.0.1:${silentPort}` },
    ]);
    const started = Date.now();
    await r.afterUpload(path, me.uid);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await count(metrics)).toEqual({ ok: 1, failed: 1, refused: 0 });
    const warn = lines.find((l) => String(l.msg).includes('did not reach every peer'));
    expect(warn?.failed).toEqual([{ peer: 'hung', result: 'failed', why: 'no answer within 300 ms (leadership.scriptReplication.timeoutMs)' }]);
  });

  it('a peer with another token refuses; no token here sends nothing; oversize is not sent', async () => {
    const path = join(peerDir, scriptName(5));
    writeFileSync(path, 'x'.repeat(100), { mode: 0o700 });
    const wrong = replicator([{ name: 'gw2', url: peer.url }], { token: 'another-token-of-enough-length' });
    await wrong.r.afterUpload(path, me.uid);
    expect(await count(wrong.metrics)).toEqual({ ok: 0, failed: 0, refused: 1 });
    expect(wrong.lines.find((l) => String(l.msg).includes('no standby received'))?.failed).toEqual([{ peer: 'gw2', result: 'refused', why: expect.stringMatching(/^HTTP 401: wrong bearer token/) }]);
    const none = replicator([{ name: 'gw2', url: peer.url }], { token: undefined });
    await none.r.afterUpload(path, me.uid);
    expect(none.lines.find((l) => String(l.msg).includes('no standby received'))?.failed).toEqual([{ peer: 'gw2', result: 'failed', why: expect.stringMatching(/no http.token or http.tokenFile/) }]);
    const small = replicator([{ name: 'gw2', url: peer.url }], { maxBytes: 10 });
    await small.r.afterUpload(path, me.uid);
    expect(small.lines.find((l) => String(l.msg).includes('no standby received'))?.failed).toEqual([
      { peer: 'gw2', result: 'failed', why: 'not replicated: 100 bytes is over leadership.scriptReplication.maxBytes (10)' },
    ]);
  });

  it('does not read through a symbolic link the account planted at the upload path', async () => {
    const secret = join(src, 'secret');
    writeFileSync(secret, 'root only');
    const path = join(peerDir, scriptName(6));
    symlinkSync(secret, path);
    const { r, lines } = replicator([{ name: 'gw2', url: peer.url }]);
    await r.afterUpload(path, me.uid);
    expect(lines.find((l) => String(l.msg).includes('no standby received'))?.failed).toEqual([{ peer: 'gw2', result: 'failed', why: expect.stringMatching(/ELOOP|symbolic/) }]);
  });

  it('afterRemove deletes the copy on the peer', async () => {
    const path = join(peerDir, scriptName(7));
    await peer.receiver.receive({ path, mode: 0o700, uid: me.uid, gid: me.gid, content: Buffer.from('x') });
    const { r, lines } = replicator([{ name: 'gw2', url: peer.url }]);
    await r.afterRemove(path, me.uid);
    expect(existsSync(path)).toBe(false);
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });
});

describe('ScpAckGate: the last scp acknowledgement waits for the peer copies', () => {
  /** A gate over a collecting stream; `release` lets beforeAck finish. */
  function gate() {
    const out = new PassThrough();
    const seen: number[] = [];
    out.on('data', (b: Buffer) => seen.push(...b));
    let calls = 0;
    let release!: () => void;
    const g = new ScpAckGate(out, () => {
      calls++;
      return new Promise<void>((r) => (release = r));
    });
    const sink = (bytes: number[]) => new Promise<void>((r) => g.writable.write(Buffer.from(bytes), () => r()));
    const client = (text: string | Buffer) => g.observeClient(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
    const tick = () => new Promise((r) => setImmediate(r));
    return { g, seen, sink, client, tick, calls: () => calls, release: () => release() };
  }

  it('holds the \\0 after the whole file until beforeAck resolves, and passes the earlier ones', async () => {
    const t = gate();
    await t.sink([0]); // sink ready
    t.client('C0750 5 1-x-n-dispatch-script.tmp.sh\n');
    await t.sink([0]); // header accepted
    t.client('hel');
    t.client(Buffer.from('lo\0', 'latin1')); // the bytes in two pieces, then the client's \0
    const last = t.sink([0]);
    await t.tick();
    expect(t.seen).toEqual([0, 0]);
    expect(t.calls()).toBe(1);
    let settled = false;
    void t.g.settled().then(() => (settled = true));
    await t.tick();
    expect(settled).toBe(false);
    t.release();
    await last;
    await t.g.settled();
    expect(t.seen).toEqual([0, 0, 0]);
  });

  it('understands scp -p (a T line before the C line) and an empty file', async () => {
    const t = gate();
    t.client('T1700000000 0 1700000000 0\nC0644 0 f.sh\n\0');
    const last = t.sink([0]);
    await t.tick();
    expect(t.calls()).toBe(1);
    t.release();
    await last;
    expect(t.seen).toEqual([0]);
  });

  it('passes an error answer through without calling beforeAck', async () => {
    const t = gate();
    t.client('C0644 3 f.sh\nabc\0');
    await t.sink([1, ...Buffer.from('scp: disk full\n')]);
    expect(t.calls()).toBe(0);
    expect(t.seen[0]).toBe(1);
  });

  it('leaves directories and unknown headers alone', async () => {
    for (const header of ['D0755 0 dir\n', 'garbage\n', `C0644 ${'9'.repeat(20)} f\n`]) {
      const t = gate();
      t.client(header);
      t.client(Buffer.alloc(10));
      await t.sink([0]);
      expect(t.calls()).toBe(0);
      expect(t.seen).toEqual([0]);
    }
  });
});

describe('createScriptReplication without the cluster token', () => {
  it('says so loudly at start, naming the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'execgate-notoken-'));
    try {
      const { log, lines } = memoryLog();
      const cluster = parseCluster(
        {
          cluster: 'c',
          vip: { address: '198.18.0.100' },
          leadership: { source: 'static' },
          stateDir: dir,
          gateway: { hostKeys: ['/k'], authorizedKeys: '/ak', audit: { path: join(dir, 'audit.jsonl') } },
          nodes: [
            { name: 'gw1', address: '198.18.0.11', priority: 150 },
            { name: 'gw2', address: '198.18.0.12', priority: 140 },
          ],
        },
        'test',
      );
      const config = parseConfig({ hostKeys: ['k'], authorizedKeys: 'ak', audit: { path: join(dir, 'audit.jsonl') } }, 'test.yaml', dir);
      const r = createScriptReplication({ config, cluster, node: 'gw1', token: undefined, log, metrics: createMetrics('gw1', 'native') });
      r?.stop();
      const warning = lines.find((l) => String(l.msg).startsWith('NO CLUSTER TOKEN'));
      expect(warning).toMatchObject({ level: 40, nodes: 2, fix: expect.stringMatching(/gateway\.http\.tokenFile.*same file to every node/) });
      expect(String(warning!.msg)).toMatch(/Fix: put the cluster's token in gateway\.http\.tokenFile, the same file on every node$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
