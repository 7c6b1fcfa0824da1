import { mkdirSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import type { Logger } from '../../log.js';
import type { Leadership, LeadershipState, Role } from '../types.js';

/**
 * keepalived's track_file contract. keepalived watches the file (inotify) and adds
 * value x weight to the instance priority; a result below -253 forces FAULT (and an
 * immediate priority-0 advert from a MASTER), which hands the VIP over in ~0.1 s.
 *
 *   100   leader, and a draining leader (it keeps the VIP until it releases);
 *         a new leader says 50 while the node that resigned still holds the VIP for
 *         connections that came in on it (moving the VIP would reset them)
 *    50   the standby next in line for the lead (etcd), so the VIP goes where the
 *         leadership will go
 *     0   standby: a spare that may take the VIP when the leader goes
 *   -50   a standby behind the next in line (etcd): still a spare, but its VRRP timers
 *         lose clearly to the next in line's (a close race could send the VIP to the
 *         wrong node, and correcting it takes 3 adverts)
 *  -254   stepping down (fenced, released, lost the lead, handing over after a
 *         drain), unhealthy, or stopping;
 *         back to 0 once another node is known to lead, so a two-node cluster keeps
 *         its spare
 *
 * Keep (highest base priority - lowest base priority) < 50 x weight, or a standby
 * could out-rank the leader or the next in line.
 */
import { TRACK_BEHIND, TRACK_LEADER, TRACK_STANDBY, TRACK_STEP_DOWN, TRACK_SUCCESSOR } from './trackValues.js';

export { TRACK_BEHIND, TRACK_LEADER, TRACK_STANDBY, TRACK_STEP_DOWN, TRACK_SUCCESSOR };
export type TrackValue = typeof TRACK_LEADER | typeof TRACK_SUCCESSOR | typeof TRACK_STANDBY | typeof TRACK_BEHIND | typeof TRACK_STEP_DOWN;

export interface TrackInputs {
  role: Role;
  /** The known leader (from the state), if any. */
  leader?: string;
  /** This node's name. */
  self: string;
  /** This node left leadership (or was fenced) and nobody else is known to lead yet. */
  steppingDown: boolean;
  /** execgate is shutting down (SIGTERM): hand over first. */
  stopping: boolean;
  /** Health says no (set by the health checks). */
  unhealthy: boolean;
  /** A drained leader handing over: traffic must move away before it releases. */
  handover?: boolean;
  /**
   * The node that resigned still holds the VIP for its connections: a new leader does not
   * claim it yet, and its next in line is not lifted (the VIP must go to the new leader).
   */
  vipHeldElsewhere?: boolean;
  /** A standby next in line for the lead (true), behind it (false), or no order known. */
  successor?: boolean;
}

const leads = (role: Role) => role === 'leader' || role === 'draining';

/** The value for a situation; pure, the whole contract in one place. */
export function trackValue(i: TrackInputs): TrackValue {
  if (i.stopping || i.unhealthy || i.handover) return TRACK_STEP_DOWN;
  if (leads(i.role)) return i.role === 'leader' && i.vipHeldElsewhere ? TRACK_SUCCESSOR : TRACK_LEADER;
  const otherLeads = i.leader !== undefined && i.leader !== i.self;
  if (otherLeads) {
    if (i.successor === true) return i.vipHeldElsewhere ? TRACK_BEHIND : TRACK_SUCCESSOR;
    return i.successor === false ? TRACK_BEHIND : TRACK_STANDBY;
  }
  if (i.role === 'fenced' || i.steppingDown) return TRACK_STEP_DOWN;
  return TRACK_STANDBY;
}

export interface TrackFileOptions {
  path: string;
  node: string;
  log?: Logger;
  /**
   * A standby that stepped down returns to 0 after this long even when no other
   * leader is known (e.g. a vrrp node that cannot observe its peers), so the spare
   * is never lost for good. A fenced node stays at -254 until another node leads.
   * 0 disables the limit.
   */
  stepDownHoldMs?: number;
}

/**
 * Writes the track_file for keepalived, following the leadership state. Writes go
 * to a temp file in the same directory and are renamed over the target, so
 * keepalived never reads a half-written value. Only changes are written.
 */
export class TrackFileWriter {
  private state: LeadershipState | null = null;
  private steppingDown = false;
  private stopping = false;
  private unhealthy = false;
  private written: TrackValue | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly holdMs: number;

  constructor(private readonly opts: TrackFileOptions) {
    this.holdMs = opts.stepDownHoldMs ?? 3000;
  }

  /** The value last written (null before the first write). */
  get value(): TrackValue | null {
    return this.written;
  }

  /** Follows a leadership source: writes its current state now and every change. */
  follow(leadership: Leadership): void {
    this.unsubscribe?.();
    this.unsubscribe = leadership.onChange((s) => this.update(s));
    this.update(leadership.current());
  }

  /** Feeds one state (also what follow() does on every change). */
  update(state: LeadershipState): void {
    const prev = this.state;
    this.state = state;
    const otherLeads = state.leader !== undefined && state.leader !== this.opts.node;
    if (leads(state.role)) {
      this.steppingDown = false;
    } else if (otherLeads) {
      this.steppingDown = false;
    } else if (state.role === 'fenced' || (prev !== null && leads(prev.role))) {
      this.steppingDown = true;
    }
    this.armHold();
    this.apply();
  }

  /** Health: while unhealthy the file says -254 whatever the role. */
  setUnhealthy(unhealthy: boolean): void {
    if (this.unhealthy === unhealthy) return;
    this.unhealthy = unhealthy;
    this.apply();
  }

  /** Step down explicitly (e.g. before a release): -254 until another node leads. */
  stepDown(): void {
    this.steppingDown = true;
    this.armHold();
    this.apply();
  }

  /** SIGTERM: write -254 first so keepalived hands the VIP over before we go. Sticky. */
  stop(): void {
    this.stopping = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.apply();
  }

  private armHold(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    if (!this.steppingDown || this.holdMs <= 0 || this.state?.role !== 'standby') return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null;
      if (this.state?.role !== 'standby') return;
      this.opts.log?.info({ holdMs: this.holdMs }, 'no other leader seen since stepping down; track file back to standby');
      this.steppingDown = false;
      this.apply();
    }, this.holdMs);
    this.holdTimer.unref();
  }

  private apply(): void {
    const role = this.state?.role ?? 'standby';
    const value = trackValue({
      role,
      leader: this.state?.leader,
      self: this.opts.node,
      steppingDown: this.steppingDown,
      stopping: this.stopping,
      unhealthy: this.unhealthy,
      handover: this.state?.handover?.side === 'leaving' && this.state.handover.trafficAway,
      vipHeldElsewhere: this.state?.handover?.side === 'joining' && this.state.handover.vipHeldBy !== undefined,
      ...(this.state?.successor !== undefined ? { successor: this.state.successor } : {}),
    });
    if (value === this.written) return;
    try {
      writeTrackFile(this.opts.path, value);
      this.written = value;
      this.opts.log?.info({ trackFile: this.opts.path, value, role }, 'track file written');
    } catch (err) {
      this.opts.log?.error({ trackFile: this.opts.path, err: (err as Error).message }, 'cannot write the track file');
    }
  }
}

/** Atomic replace: temp file in the same directory, fsync, rename. */
export function writeTrackFile(path: string, value: number): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, `${value}\n`, { mode: 0o644 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
