/** What the session handler tells its connection about each command. */
export interface CommandActivity {
  /** The command passed the leader gate (or was refused by it). */
  commandDecided(): void;
  commandStarted(): void;
  commandEnded(): void;
}

/**
 * Idle: no running command for idleTimeoutSeconds. Long silent jobs are not idle;
 * dead clients under them are found by SSH keepalive probes instead.
 */
export class IdleTimeout {
  private running = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
  ) {}

  /** Starts (or restarts) the idle clock. */
  arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(this.onIdle, this.timeoutMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** The activity callbacks for the connection's sessions; `decided` runs on commandDecided. */
  activity(decided: () => void): CommandActivity {
    return {
      commandDecided: decided,
      commandStarted: () => {
        this.running++;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
      },
      commandEnded: () => {
        if (--this.running === 0) this.arm();
      },
    };
  }
}
