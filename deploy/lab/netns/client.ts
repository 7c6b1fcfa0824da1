/**
 * The client host's side of the lab: the ssh2 driver (driver.ts) and one long-lived JVM
 * running the JSch harness (Rundeck's JSch), each a request/answer process speaking JSON
 * lines. The workload and the scenarios reach the gateways through here.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import type { ClientKeys } from './clusterFile.js';
import { jschClasspath } from './jschBuild.js';
import type { NetnsLab } from './namespaces.js';
import { DRIVER } from './paths.js';
import type { Target } from './topology.js';

/**
 * How long the lab's Rundeck waits for a connection: Rundeck's ssh-connect-timeout is 0
 * (none) by default, so a SYN waits as long as Linux retries it (~127 s); docs/rundeck.md
 * advises at least 75 s with a VIP, because a VIP drain holds new connections (up to
 * vipHoldSeconds, 60) until the VIP moves.
 */
export const RUNDECK_CONNECT_TIMEOUT_MS = 75_000;

/** The lab's stand-in for a client keepalive: a JSch connection that received nothing this long is dead. */
const JSCH_DEAD_AFTER_MS = 12_000;

/** One request/answer process (driver or JSch server) speaking JSON lines. */
class LineChannel {
  private buf = '';
  private waiting: Array<(line: string) => void> = [];
  private queued: string[] = [];
  constructor(
    readonly child: ChildProcess,
    onLine?: (line: string) => boolean,
  ) {
    child.stdout!.on('data', (d: Buffer) => {
      const parts = (this.buf + d.toString()).split('\n');
      this.buf = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.startsWith('{')) continue;
        if (onLine?.(line)) continue;
        const w = this.waiting.shift();
        if (w) w(line);
        else this.queued.push(line);
      }
    });
  }
  next(): Promise<string> {
    const q = this.queued.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise((r) => this.waiting.push(r));
  }
}

export type HttpAnswer = { status: number; body?: string };

export interface JschStepResult {
  ok: boolean;
  exit?: number;
  message?: string;
  ops: Array<Record<string, unknown>>;
  hung?: boolean;
}

export class LabClient {
  /** The JVM's stderr, for the tail printed on a failure. */
  readonly stderrTail: string[] = [];
  private ns = '';
  private driver: ChildProcess | null = null;
  private driverPending = new Map<number, (v: Record<string, unknown>) => void>();
  private driverSeq = 1;
  private jvm: { child: ChildProcess; ch: LineChannel } | null = null;

  constructor(
    private readonly net: NetnsLab,
    /** Where the workload connects: the VIP, or HAProxy's address. */
    readonly target: Target,
    /** gateway.http.token. */
    private readonly token: string,
    private readonly log: (line: string) => void,
  ) {}

  /** The driver and the JVM in the client host's namespace. */
  start(clientNs: string, keys: ClientKeys): void {
    this.ns = clientNs;
    this.driver = this.net.spawn(clientNs, [process.execPath, DRIVER, keys.ed25519, 'root'], { stdio: ['pipe', 'pipe', 'pipe'] });
    new LineChannel(this.driver, (line) => {
      const m = JSON.parse(line) as { id: number };
      const r = this.driverPending.get(m.id);
      if (r) {
        this.driverPending.delete(m.id);
        r(m as Record<string, unknown>);
      }
      return true;
    });
    this.driver.stderr!.on('data', (d: Buffer) => this.log(`[driver] ${d.toString().trim()}`));
    this.driver.stdin!.on('error', () => {});
    const cp = jschClasspath();
    const jvm = this.net.spawn(
      clientNs,
      [
        'java',
        '-Xss512k',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        '-cp',
        cp,
        'RundeckStep',
        '--host',
        this.target.host,
        '--port',
        String(this.target.port),
        '--user',
        'root',
        '--key',
        keys.rsa,
        '--node',
        'gw',
        '--connect-timeout',
        String(RUNDECK_CONNECT_TIMEOUT_MS),
        '--mode',
        'server',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    jvm.stderr!.on('data', (d: Buffer) => this.stderrTail.push(`[jvm] ${d.toString().trim()}`));
    jvm.stdin!.on('error', () => {});
    this.jvm = { child: jvm, ch: new LineChannel(jvm) };
  }

  /** One request to the driver (exec, scp, http; see driver.ts), answered when it is done. */
  request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.driverSeq++;
    return new Promise((resolve) => {
      this.driverPending.set(id, resolve);
      this.driver!.stdin!.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  http(url: string, method = 'GET', timeoutMs = 2000): Promise<HttpAnswer> {
    return this.request({ op: 'http', url, method, token: this.token, timeoutMs }) as Promise<HttpAnswer>;
  }

  /** One Rundeck script step through the JVM (scp, chmod, exec, rm). */
  async jschStep(execid: string, script: string): Promise<JschStepResult> {
    const jvm = this.jvm!;
    jvm.child.stdin!.write(`step\t${execid}\t${script}\t\tRD_JOB_EXECID=${execid}\n`);
    const answer = jvm.ch.next();
    let hung = false;
    // JSch as the harness configures it has no keepalive: when its gateway host dies
    // mid-command the idle connection never learns it (Rundeck's "silent black hole").
    // The lab does what a client keepalive would: a connection of the JVM's that has
    // received nothing for 12 s is killed. A connect still sending SYNs (a VIP drain
    // holds it) and a busy connection are left alone.
    const timer = setInterval(() => {
      if (this.killClientSockets(jvm.child.pid!, JSCH_DEAD_AFTER_MS) > 0) hung = true;
    }, 1000);
    const r = JSON.parse(await answer) as JschStepResult;
    clearInterval(timer);
    r.hung = hung;
    return r;
  }

  /**
   * Kills the established TCP sockets of one client-host process that have received
   * nothing for `idleMs` (ss -K), like a keepalive timeout; returns how many.
   */
  killClientSockets(pid: number, idleMs: number): number {
    const r = spawnSync('ip', ['netns', 'exec', this.ns, 'ss', '-tnpiH', 'state', 'established'], { encoding: 'utf8' });
    const lines = r.stdout.split('\n');
    let killed = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (!line.includes(`pid=${pid},`)) continue;
      const info = lines[i + 1] ?? ''; // ss -i: the socket's details on the next, indented line
      const lastrcv = Number(/\blastrcv:(\d+)/.exec(info)?.[1] ?? 0);
      if (lastrcv < idleMs) continue;
      const local = line.trim().split(/\s+/)[2]; // with a state filter ss prints no State column
      const port = local?.split(':').at(-1);
      if (port) {
        spawnSync('ip', ['netns', 'exec', this.ns, 'ss', '-K', '-tn', 'sport', '=', `:${port}`]);
        killed++;
      }
    }
    return killed;
  }

  /** Ends the driver's and the JVM's input (the namespace teardown stops them). */
  close(): void {
    this.driver?.stdin?.end();
    this.jvm?.child.stdin?.end();
  }
}
