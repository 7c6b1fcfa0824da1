import { spawn } from 'node:child_process';

/**
 * sd_notify without a native module. The protocol is one AF_UNIX/SOCK_DGRAM datagram
 * of newline-separated KEY=VALUE lines to $NOTIFY_SOCKET, and Node has no unix
 * datagram sockets, so each notification is sent by systemd's own `systemd-notify`
 * as a short-lived child process:
 *
 * - The sender is then the child, not the main PID: the unit needs NotifyAccess=all.
 *   (`systemd-notify --pid` would only add MAINPID=, which we do not want to change.)
 * - systemd-notify waits (BARRIER=1) until systemd has processed the message, so the
 *   message is attributed to the unit even though the child exits right away.
 * - The watchdog ping is scheduled from the event loop: when the loop stalls (GC
 *   pause, swap, SIGSTOP), no child is spawned, no ping arrives, and systemd kills
 *   the whole unit (WatchdogSignal=SIGKILL, KillMode=control-group).
 *
 * Costs: one fork+exec per ping (at half of WatchdogSec, e.g. every second), measured
 * in milliseconds; a ping still in flight is not stacked.
 */
export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** The systemd-notify binary (tests may point it elsewhere). */
  command?: string;
  /** Called when a notification could not be sent (never throws). */
  onError?: (message: string) => void;
}

export class SystemdNotifier {
  readonly socket: string | null;
  /** From WATCHDOG_USEC, when systemd asked this very process for pings. */
  readonly watchdogMs: number | null;
  private readonly env: NodeJS.ProcessEnv;
  private readonly command: string;
  private readonly onError: (message: string) => void;
  private timer: NodeJS.Timeout | null = null;
  private pingInFlight = false;
  private closed = false;
  /** Pings sent so far (for tests and logs). */
  pings = 0;

  constructor(options: NotifierOptions = {}) {
    this.env = options.env ?? process.env;
    this.command = options.command ?? 'systemd-notify';
    this.onError = options.onError ?? (() => {});
    this.socket = this.env.NOTIFY_SOCKET || null;
    const usec = Number(this.env.WATCHDOG_USEC);
    const pid = this.env.WATCHDOG_PID;
    const forUs = pid === undefined || pid === '' || Number(pid) === process.pid;
    this.watchdogMs = this.socket && Number.isFinite(usec) && usec > 0 && forUs ? usec / 1000 : null;
  }

  get enabled(): boolean {
    return this.socket !== null;
  }

  /** Sends KEY=VALUE assignments; resolves true when systemd-notify reported success. */
  send(...assignments: string[]): Promise<boolean> {
    if (!this.socket || this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      let child;
      try {
        child = spawn(this.command, assignments, { stdio: ['ignore', 'ignore', 'pipe'], env: this.env });
      } catch (err) {
        this.onError(`cannot run ${this.command}: ${(err as Error).message}`);
        resolve(false);
        return;
      }
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', (err) => {
        this.onError(`cannot run ${this.command}: ${err.message}`);
        resolve(false);
      });
      child.once('close', (code) => {
        if (code !== 0) this.onError(`${this.command} ${assignments.join(' ')} exited ${code}: ${stderr.trim()}`);
        resolve(code === 0);
      });
    });
  }

  /** READY=1 (once listening) and, when systemd wants them, watchdog pings from now on. */
  async ready(status?: string): Promise<boolean> {
    const ok = await this.send('READY=1', ...(status ? [`STATUS=${status}`] : []));
    this.startWatchdog();
    return ok;
  }

  /** WATCHDOG=1 at half of WATCHDOG_USEC, from the event loop. */
  startWatchdog(): void {
    if (this.watchdogMs === null || this.timer || this.closed) return;
    const every = Math.max(50, Math.floor(this.watchdogMs / 2));
    this.timer = setInterval(() => this.ping(), every);
    this.timer.unref();
    this.ping();
  }

  private ping(): void {
    if (this.pingInFlight || this.closed) return;
    this.pingInFlight = true;
    void this.send('WATCHDOG=1').then((ok) => {
      this.pingInFlight = false;
      if (ok) this.pings++;
    });
  }

  /** STOPPING=1: systemd then waits for the exit instead of expecting pings. */
  async stopping(status?: string): Promise<void> {
    this.stopWatchdog();
    await this.send('STOPPING=1', ...(status ? [`STATUS=${status}`] : []));
  }

  stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.stopWatchdog();
    this.closed = true;
  }
}
