import type { Logger } from '../log.js';
import type { DrainController } from './handover/drain.js';
import type { TrackFileWriter } from './keepalived/trackFile.js';

export interface HealthStepDownOptions {
  check: () => Promise<{ ok: boolean; reason: string | null }>;
  leadership: DrainController;
  track: TrackFileWriter | null;
  /** Stops running commands (with grace) before leadership is released. */
  terminate: (reason: string) => Promise<void>;
  log: Logger;
  intervalMs?: number;
  /** Consecutive failed checks before an unhealthy leader steps down. */
  failures?: number;
  /** Consecutive good checks before it campaigns again. */
  recoveries?: number;
}

/**
 * An unhealthy leader (audit log not writable, disk full, listener down, event loop
 * stalled) hands over instead of refusing work forever: keepalived sees -254 at once
 * (track file), and after a few failed checks the node stops its commands and
 * releases leadership (etcd: revokes its lease) so a healthy node takes over. Once
 * healthy again it rejoins as a standby. Drains are left alone.
 */
export class HealthStepDown {
  private timer: NodeJS.Timeout | null = null;
  private bad = 0;
  private good = 0;
  private steppedDown = false;
  private busy = false;

  constructor(private readonly o: HealthStepDownOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const health = await this.o.check();
      this.o.track?.setUnhealthy(!health.ok);
      if (health.ok) {
        this.bad = 0;
        this.good++;
        if (this.steppedDown && this.good >= (this.o.recoveries ?? 3)) await this.rejoin();
        return;
      }
      this.good = 0;
      this.bad++;
      const role = this.o.leadership.current().role;
      if (!this.steppedDown && role === 'leader' && this.bad >= (this.o.failures ?? 2)) await this.stepDown(health.reason ?? 'unhealthy');
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'health step-down check failed');
    } finally {
      this.busy = false;
    }
  }

  private async stepDown(reason: string): Promise<void> {
    this.steppedDown = true;
    this.o.log.error({ reason }, 'unhealthy leader: stopping commands and handing leadership over');
    await this.o.terminate(`unhealthy: ${reason}`);
    await this.o.leadership.release();
  }

  private async rejoin(): Promise<void> {
    this.steppedDown = false;
    if (this.o.leadership.status().phase !== 'active') return; // an operator drained it meanwhile
    this.o.log.info('healthy again: campaigning as a standby');
    await this.o.leadership.rejoin();
  }
}
