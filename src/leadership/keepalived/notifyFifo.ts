import { constants, lstatSync, mkdirSync, openSync, chmodSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import net from 'node:net';
import type { Logger } from '../../log.js';

/** States keepalived reports for a VRRP instance or sync group. */
export type VrrpState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP' | 'MASTER_RX_LOWER_PRI' | 'DELETED';

export interface NotifyEvent {
  kind: 'INSTANCE' | 'GROUP';
  name: string;
  state: VrrpState;
  priority: number | null;
}

const STATES = new Set<string>(['MASTER', 'BACKUP', 'FAULT', 'STOP', 'MASTER_RX_LOWER_PRI', 'DELETED']);

/**
 * Parses one notify_fifo line: `INSTANCE "VI_1" MASTER 150`, `GROUP "G1" BACKUP`.
 * Returns null for anything else (lvs lines, garbage, unknown states).
 */
export function parseNotifyLine(line: string): NotifyEvent | null {
  const m = /^(INSTANCE|GROUP)\s+"([^"]*)"\s+([A-Z_]+)(?:\s+(\d+))?\s*$/.exec(line.trim());
  if (!m || !STATES.has(m[3]!)) return null;
  return {
    kind: m[1] as NotifyEvent['kind'],
    name: m[2]!,
    state: m[3] as VrrpState,
    priority: m[4] === undefined ? null : Number(m[4]),
  };
}

/** Creates the FIFO with mode 0600 when missing; refuses a path that is something else. */
export function ensureFifo(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (st) {
    if (!st.isFIFO()) throw new Error(`${path} exists and is not a FIFO; remove it or point notifyFifo elsewhere`);
    return;
  }
  mkdirSync(dirname(path), { recursive: true });
  try {
    execFileSync('mkfifo', ['-m', '0600', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    // Lost a race with keepalived creating it is fine; anything else is not.
    try {
      if (lstatSync(path).isFIFO()) return;
    } catch {
      // fall through
    }
    throw new Error(`cannot create the FIFO ${path}: ${(err as Error).message}`, { cause: err });
  }
  chmodSync(path, 0o600);
}

export interface NotifyFifoOptions {
  path: string;
  log?: Logger;
  /** Delay before re-opening after EOF (keepalived gone); avoids any spin. */
  reopenDelayMs?: number;
}

/**
 * Reads keepalived's notify_fifo. Opens the FIFO read-only and non-blocking (so the
 * open never waits for a writer, nor ties up a libuv thread), splits lines, and on
 * EOF (the last writer — keepalived — closed it, e.g. it stopped or crashed) opens
 * it again to wait for the next keepalived.
 */
export class NotifyFifoReader {
  private socket: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private partial = '';
  private readonly listeners = new Set<(event: NotifyEvent, line: string) => void>();
  private readonly eofListeners = new Set<() => void>();

  constructor(private readonly opts: NotifyFifoOptions) {}

  onEvent(listener: (event: NotifyEvent, line: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when the writer side closed (keepalived stopped, crashed or re-opened it). */
  onEof(listener: () => void): () => void {
    this.eofListeners.add(listener);
    return () => this.eofListeners.delete(listener);
  }

  start(): void {
    ensureFifo(this.opts.path);
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.destroy();
    this.socket = null;
  }

  private open(): void {
    if (this.stopped) return;
    let fd: number;
    try {
      ensureFifo(this.opts.path);
      fd = openSync(this.opts.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      this.opts.log?.error({ notifyFifo: this.opts.path, err: (err as Error).message }, 'cannot open the notify FIFO; retrying');
      this.schedule(1000);
      return;
    }
    let socket: net.Socket;
    try {
      socket = new net.Socket({ fd, readable: true, writable: false });
    } catch (err) {
      closeSync(fd);
      this.opts.log?.error({ notifyFifo: this.opts.path, err: (err as Error).message }, 'cannot read the notify FIFO; retrying');
      this.schedule(1000);
      return;
    }
    this.socket = socket;
    this.partial = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.feed(chunk));
    socket.on('error', (err) => this.opts.log?.warn({ notifyFifo: this.opts.path, err: err.message }, 'notify FIFO read error'));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.partial) this.feed('\n');
      if (this.stopped) return;
      for (const l of this.eofListeners) l();
      this.schedule(this.opts.reopenDelayMs ?? 50);
    });
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open();
    }, ms);
    this.timer.unref();
  }

  private feed(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      const event = parseNotifyLine(line);
      if (!event) {
        this.opts.log?.debug({ line }, 'notify FIFO line ignored');
        continue;
      }
      for (const l of this.listeners) l(event, line);
    }
  }
}
