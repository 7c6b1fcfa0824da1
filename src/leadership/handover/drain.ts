import type { Logger } from '../../log.js';
import type { Leadership, LeadershipState } from '../types.js';
import type { TrafficProbe } from './probes.js';
import { DRAIN_POLL_MS, TRAFFIC_POLL_MS } from './timings.js';
import { StateEmitter } from '../stateEmitter.js';
import { VipHold } from './vipHold.js';

/**
 * Drain states: `active` (normal), `draining` (refusing new commands, waiting for the
 * running ones), `handover` (admission and traffic move to the next node; a fast
 * handover resigns admission at once and lets the running commands finish here),
 * `drained` (leadership released; stays out until undrain).
 */
export type DrainPhase = 'active' | 'draining' | 'handover' | 'drained';

export interface DrainStatus {
  phase: DrainPhase;
  /** When the drain began (ms since epoch); null when active. */
  since: number | null;
  /** When running commands are killed and leadership released anyway; null unless draining. */
  deadline: number | null;
  timeoutSeconds: number;
  running: number;
  /** The last release()/rejoin() failure, for operators. */
  error: string | null;
  /** Fast handover: the node new connections are forwarded to (null: none are). */
  forwardingTo: string | null;
}

export interface DrainOptions {
  /** This node's name (never a forwarding target). */
  self?: string;
  /** How many commands run now (CommandRegistry.size). */
  running: () => number;
  /** Kills every running command (at the drain deadline), resolving once they are gone. */
  terminate: (reason: string) => Promise<void>;
  timeoutSeconds: number;
  log?: Logger;
  /** How often the running count is checked while draining. */
  pollMs?: number;
  /**
   * How long to keep leading after the drain, while the VIP or HAProxy moves new
   * traffic to the next node (cluster modes); 0 releases at once (single node).
   */
  handoverMs?: number;
  /** Ends the handover window early, once no new traffic reaches this node. */
  traffic?: TrafficProbe;
  /**
   * Running commands whose connections break when traffic moves (they came in on the
   * VIP: moving it resets them). While any runs, a strict drain keeps the traffic here
   * and refuses new commands, as on a single node.
   */
  pinned?: () => number;
  /**
   * "fast" (etcd): resign admission at once, forward new connections to the new leader,
   * let the running commands finish under this node's lease. "strict": the next node
   * leads only once every command here has ended. Fast needs a source with resign().
   */
  mode?: 'fast' | 'strict';
  /** Fast: open client connections (SSH and forwarded) that came in on the VIP. */
  vipConnections?: () => number;
  /** Fast: open connections this node forwards to the new leader. */
  forwarded?: () => number;
  /** True while a connection accepted before this instant has not asked for a command yet. */
  undecidedBefore?: (instant: number) => boolean;
  /** Fast, at the drain deadline: cut the connections still open (VIP and forwarded); returns how many. */
  cutConnections?: (reason: string) => number;
  /**
   * VIP drains: hold (true) or admit again (false) new connections on the VIP's own
   * listener (ssh/synHold.ts). Absent where the VIP has no listener of its own.
   */
  holdVip?: (hold: boolean) => Promise<void>;
  /** True while the VIP is on this node. */
  vipLocal?: () => boolean;
  /** The longest new VIP connections are held (0: never). */
  vipHoldMs?: number;
}

const DRAIN_TIMEOUT = 'drain timeout';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Overlays role "draining" on a Leadership source. It is itself a Leadership, so the
 * gate, the metrics and the HTTP surface see the overlaid state. While draining, a
 * leader answers role "draining" (the gate refuses new commands); once no command
 * runs, or the drain timeout passed (remaining commands are killed first, so no two
 * nodes ever run work at once), the source is asked to release(). undrain() cancels
 * a drain in progress or asks the source to rejoin().
 */
export class DrainController implements Leadership {
  private phase: DrainPhase = 'active';
  private since: number | null = null;
  private deadline: number | null = null;
  private lastError: string | null = null;
  private poll: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null = null;
  private releasing: Promise<void> | null = null;
  /** Inside the handover window: still admitting while traffic moves away. */
  private handingOver = false;
  /** This drain's handover is done; only the release is left (or being retried). */
  private handedOver = false;
  private handoverAt: number | null = null;
  /** Fast handover: admission resigned; running commands and open connections finish here. */
  private resigned = false;
  /**
   * Fast handover: the resign is on its way. It counts as done from the moment it is
   * sent: the next node may lead as soon as the mark is in etcd, before the answer comes
   * back here, so this node stops admitting now; and its source may already say standby
   * (its poll saw the next node lead on the mark), which must read as resigned, not as
   * a lost lead, which would end the running commands.
   */
  private resigning = false;
  /** New connections are forwarded to the new leader (from the start of a fast handover until undrain). */
  private forwarding = false;
  /** Fast handover: the VIP is released (no connection that came in on it is open). */
  private trafficAway = false;
  /** Resigned: when another node was first seen leading. */
  private nextLeadsSince: number | null = null;
  /** The next node as this one last knew it while leading: where to forward before it leads. */
  private lastNext: string | null = null;
  /** Holds new connections on the VIP during a drain (null: no VIP listener of its own to hold). */
  private readonly vipHold: VipHold | null;
  /** Strict VIP drain: still admitting while the hold is set up (admitUntilHeld). */
  private admittingUntilHeld = false;
  private readonly emitter: StateEmitter;

  constructor(
    private readonly source: Leadership,
    private readonly options: DrainOptions,
  ) {
    this.emitter = new StateEmitter(options.log);
    this.vipHold =
      options.holdVip && options.vipLocal
        ? new VipHold({ hold: options.holdVip, vipLocal: options.vipLocal, limitMs: options.vipHoldMs ?? 0, vipConnections: options.vipConnections, log: options.log })
        : null;
    this.emitter.emit(this.current()); // the starting point of the change rule (nobody listens yet)
    source.onChange(() => this.emit());
  }

  get kind(): string {
    return this.source.kind;
  }

  current(): LeadershipState {
    const state = this.source.current();
    if (state.role === 'leader' && state.next) this.lastNext = state.next;
    if (this.phase === 'active' || state.role === 'fenced') return state;
    const running = this.options.running();
    if (this.resigned || this.resigning) {
      if (this.nextLeadsSince === null && state.leader && state.leader !== this.options.self) this.nextLeadsSince = Date.now();
      return {
        ...state,
        role: 'draining',
        since: this.since ?? state.since,
        handover: {
          side: 'leaving',
          startedAt: this.handoverAt ?? Date.now(),
          admitting: false,
          trafficAway: this.trafficAway,
          ...(this.nextLeadsSince !== null ? { nextLeadsSince: this.nextLeadsSince } : {}),
        },
        reason: `resigned: ${state.leader && state.leader !== this.options.self ? state.leader : 'the next node'} leads; ${running} command${running === 1 ? '' : 's'} still running here${this.trafficAway ? '' : ', keeping the VIP for the connections that came in on it'}`,
      };
    }
    // A drained or draining node never admits work, even if its source still says leader.
    if (state.role !== 'leader') return state;
    // Strict VIP drain: the connections that arrived before the hold took effect still get their command.
    if (this.phase === 'draining' && this.admittingUntilHeld) return state;
    if (this.phase === 'handover' && this.handingOver) {
      const fromSource = state.handover?.side === 'leaving' ? state.handover.successorReady : undefined;
      return {
        ...state,
        role: 'draining',
        handover: {
          side: 'leaving',
          startedAt: this.handoverAt ?? Date.now(),
          admitting: true,
          // A fast handover forwards new connections instead, so it keeps the traffic until it resigned.
          trafficAway: this.options.mode !== 'fast' || !this.forwarding,
          ...(fromSource ? { successorReady: true } : {}),
        },
        since: this.since ?? state.since,
        reason: 'drained: handing over to the next node',
      };
    }
    return {
      ...state,
      role: 'draining',
      since: this.since ?? state.since,
      reason: this.phase === 'draining' ? `draining: ${running} command${running === 1 ? '' : 's'} still running` : 'drained: leadership release pending',
    };
  }

  onChange(listener: (state: LeadershipState) => void): () => void {
    return this.emitter.on(listener);
  }

  /** Tells listeners of a change (the rule is in stateEmitter.ts). */
  private emit(): void {
    this.emitter.emit(this.current());
  }

  /**
   * The node new SSH connections go to instead of this one (null: handle them here):
   * during a fast handover and after it, the new leader (or, before it leads, the node
   * next in line).
   */
  forwardTarget(): string | null {
    if (!this.forwarding) return null;
    const state = this.source.current();
    if (state.role === 'leader') return state.next ?? this.lastNext;
    if (state.leader && state.leader !== this.options.self) return state.leader;
    return this.lastNext;
  }

  start(): Promise<void> {
    return this.source.start();
  }

  async stop(): Promise<void> {
    this.clearTimers();
    await this.vipHold?.lift('stopping');
    await this.source.stop();
  }

  release(): Promise<void> {
    return this.source.release();
  }

  rejoin(): Promise<void> {
    return this.source.rejoin();
  }

  awaitLead(): () => void {
    return this.source.awaitLead?.() ?? (() => {});
  }

  announceReady(handoverId: string): Promise<void> {
    return this.source.announceReady?.(handoverId) ?? Promise.resolve();
  }

  status(): DrainStatus {
    return {
      phase: this.phase,
      since: this.since,
      deadline: this.deadline,
      timeoutSeconds: this.options.timeoutSeconds,
      running: this.options.running(),
      error: this.lastError,
      forwardingTo: this.forwardTarget(),
    };
  }

  /** Starts a drain (idempotent); returns at once. Use drained() to wait for the end. */
  drain(): DrainStatus {
    if (this.phase !== 'active') return this.status();
    this.phase = 'draining';
    this.handedOver = false;
    if (this.fastHandover()) {
      this.since = Date.now();
      this.deadline = this.since + this.options.timeoutSeconds * 1000;
      this.lastError = null;
      this.options.log?.info(
        { running: this.options.running(), timeoutSeconds: this.options.timeoutSeconds, next: this.lastNext },
        'drain started: forwarding new connections and handing admission to the next node; running commands finish here',
      );
      void this.finish('fast handover');
      return this.status();
    }
    this.since = Date.now();
    this.deadline = this.since + this.options.timeoutSeconds * 1000;
    this.lastError = null;
    // Commands pinned to the VIP keep it here: hold new VIP connections instead of refusing them.
    const holding = (this.options.handoverMs ?? 0) > 0 && !this.canHandOver() && (this.vipHold?.begin() ?? false);
    if (holding) void this.admitUntilHeld();
    this.options.log?.info(
      { running: this.options.running(), pinned: this.options.pinned?.() ?? 0, timeoutSeconds: this.options.timeoutSeconds },
      this.canHandOver()
        ? 'drain started: handing new traffic to the next node'
        : holding
          ? 'drain started: holding new connections on the VIP until the running commands end'
          : 'drain started: refusing new commands until the running ones end',
    );
    this.emit();
    this.startStrictPolling();
    return this.status();
  }

  /** The cluster can hand over fast: mode fast, a source that can resign, and this node leads. */
  private fastHandover(): boolean {
    return this.options.mode === 'fast' && (this.options.handoverMs ?? 0) > 0 && this.source.resign !== undefined && this.source.current().role === 'leader';
  }

  /**
   * Strict drains: in a cluster, traffic moves to the next node at once while running
   * commands finish here, unless moving it would cut their connections (VIP); a single
   * node has nowhere to send it. Otherwise new commands are refused until none runs.
   */
  private canHandOver(): boolean {
    return (this.options.handoverMs ?? 0) > 0 && (this.options.pinned?.() ?? 0) === 0;
  }

  /** Strict (and single-node) drains: look at the running commands until the drain can end. */
  private startStrictPolling(): void {
    this.clearTimers();
    this.poll = setInterval(
      () => {
        if (this.options.running() === 0) void this.finish('no command running');
        else if (this.canHandOver()) void this.finish('handover');
      },
      Math.min(this.options.pollMs ?? 200, DRAIN_POLL_MS),
    );
    this.poll.unref();
    const left = Math.max(0, (this.deadline ?? Date.now()) - Date.now());
    this.timer = setTimeout(() => void this.finish(DRAIN_TIMEOUT), left);
    this.timer.unref();
    if (this.options.running() === 0) void this.finish('no command running');
    else if (this.canHandOver()) void this.finish('handover');
  }

  /**
   * The fast handover (etcd, leadership.handover: fast). New connections are forwarded
   * to the next node from now on; once every connection accepted before that has asked
   * for its command, this node resigns admission (the next node leads within one poll,
   * with a larger token) and keeps its lease while its running commands finish. The VIP
   * stays while a connection that came in on it is open (moving it would reset that
   * connection) and leaves at the first moment none is. At the drain deadline what still
   * runs is killed and what is still open is cut, and the log says what. False when the
   * source could not resign: the drain goes on the strict way.
   */
  private async handOverFast(): Promise<boolean> {
    this.handedOver = true;
    this.phase = 'handover';
    this.handingOver = true;
    this.forwarding = true;
    this.trafficAway = false;
    const began = (this.handoverAt = Date.now());
    this.emit();
    this.vipHold?.begin();
    const settleUntil = began + (this.options.handoverMs ?? 0);
    while (this.phase === 'handover' && this.options.undecidedBefore?.(began) && Date.now() < settleUntil) await sleep(TRAFFIC_POLL_MS);
    if (this.phase !== 'handover') return true; // undrained meanwhile
    const holdsVip = (this.options.vipConnections?.() ?? 0) > 0;
    this.resigning = true;
    let resigned: boolean;
    try {
      resigned = await this.source.resign!(holdsVip);
    } finally {
      this.resigning = false;
    }
    if (!resigned) {
      this.forwarding = false;
      this.handingOver = false;
      this.phase = 'draining';
      this.emit();
      return false;
    }
    this.resigned = true;
    this.nextLeadsSince = null;
    this.handingOver = false;
    this.trafficAway = !holdsVip;
    this.emit();
    this.options.log?.info({ afterMs: Date.now() - began, running: this.options.running(), holdsVip, leader: this.source.current().leader ?? null }, 'handover: admission resigned');
    const deadline = this.deadline ?? Date.now();
    const vipOpen = () => this.options.vipConnections?.() ?? 0;
    const busy = () => this.options.running() > 0 || (this.options.forwarded?.() ?? 0) > 0 || vipOpen() > 0;
    while (busy() && Date.now() < deadline) {
      if (!this.trafficAway && vipOpen() === 0) this.releaseVip(began);
      if (this.trafficAway && this.vipHold?.active && !this.options.vipLocal?.()) await this.vipHold.lift('the VIP has left; held connections reach the new leader');
      await sleep(this.trafficAway ? DRAIN_POLL_MS : TRAFFIC_POLL_MS);
    }
    if (this.options.running() > 0) {
      this.options.log?.warn({ running: this.options.running(), timeoutSeconds: this.options.timeoutSeconds }, 'drain timeout: killing the commands still running before releasing the lease');
      await this.options.terminate(`drain timeout (${this.options.timeoutSeconds} s)`);
    }
    if (busy()) {
      const cut = this.options.cutConnections?.(`drain timeout (${this.options.timeoutSeconds} s)`) ?? 0;
      this.options.log?.warn({ cut, timeoutSeconds: this.options.timeoutSeconds }, 'drain timeout: cut the connections still open here (VIP or forwarded) so the VIP can move');
    }
    if (!this.trafficAway) this.releaseVip(began);
    return true;
  }

  /**
   * Strict VIP drain: keeps admitting until the hold took effect and every connection
   * accepted before then has asked for its command (at most handoverMs), so that a
   * client which got in just before the hold is served, not refused. This node still
   * leads, and a strict drain waits for every command it admitted.
   */
  private async admitUntilHeld(): Promise<void> {
    this.admittingUntilHeld = true;
    try {
      await this.vipHold?.settled();
      const heldAt = Date.now();
      const until = heldAt + (this.options.handoverMs ?? 0);
      while (this.phase === 'draining' && this.options.undecidedBefore?.(heldAt) && Date.now() < until) await sleep(TRAFFIC_POLL_MS);
    } finally {
      this.admittingUntilHeld = false;
      this.emit();
    }
  }

  /** The VIP may leave now: track file -254 (synchronously, in this tick), then tell the new leader. */
  private releaseVip(began: number): void {
    this.trafficAway = true;
    this.emit();
    this.options.log?.info({ afterMs: Date.now() - began }, 'handover: no connection on the VIP is open; releasing it');
    void this.source.setVipHeld?.(false);
  }

  /** Resolves once the drain has released leadership (or was cancelled). */
  async drained(): Promise<DrainStatus> {
    while (this.phase === 'draining' || this.phase === 'handover') {
      if (this.releasing) await this.releasing;
      else await new Promise((r) => setTimeout(r, this.options.pollMs ?? 200));
    }
    return this.status();
  }

  private finish(why: string): Promise<void> {
    if (this.phase !== 'draining') return Promise.resolve();
    return (this.releasing ??= (async () => {
      this.clearTimers();
      if (!this.handedOver && why === 'fast handover') {
        if (!(await this.handOverFast())) {
          this.handedOver = false;
          this.startStrictPolling();
          return;
        }
        if (this.phase === 'handover') this.phase = 'draining';
      }
      if (!this.handedOver) {
        const running = this.options.running();
        if (running > 0 && why === DRAIN_TIMEOUT) {
          this.options.log?.warn({ running, timeoutSeconds: this.options.timeoutSeconds }, 'drain timeout: killing the commands still running before releasing leadership');
          await this.options.terminate(`drain timeout (${this.options.timeoutSeconds} s)`);
        }
        if (this.phase !== 'draining') return; // undrained meanwhile
        await this.handOver();
      }
      if (this.phase !== 'draining') return; // undrained meanwhile
      try {
        await this.source.release();
        this.resigned = false;
        this.phase = 'drained';
        this.deadline = null;
        this.options.log?.info({ why }, 'drain complete: leadership released');
        await this.vipHold?.lift('drain complete');
      } catch (err) {
        this.lastError = `release failed: ${(err as Error).message}`;
        this.options.log?.error({ err: (err as Error).message }, 'drain: leadership release failed; still refusing commands, retrying');
        this.timer = setTimeout(() => void this.finish(why), 1000);
        this.timer.unref();
      }
    })().finally(() => {
      this.releasing = null;
      this.emit();
    }));
  }

  /**
   * Zero-failure handover: new traffic goes elsewhere first (the track file says -254,
   * /leader 404 after a short announce) while this node still leads and runs what
   * reaches it meanwhile; once traffic has left (or after handoverMs) it waits for the
   * running commands (until the drain deadline) and releases. The next node's gate
   * waits for the lead instead of refusing (gate.admitWaiting).
   */
  private async handOver(): Promise<void> {
    const ms = this.options.handoverMs ?? 0;
    this.handedOver = true;
    if (ms <= 0) return;
    this.phase = 'handover';
    this.handingOver = true;
    this.handoverAt = Date.now();
    this.options.traffic?.begin();
    this.emit();
    void this.source.announceHandover?.();
    try {
      const windowEnd = Date.now() + ms;
      while (this.phase === 'handover' && Date.now() < windowEnd) {
        if (this.options.traffic?.gone()) {
          // Timers run before I/O in each event-loop turn: let waiting accepts in, then look again.
          await new Promise((r) => setImmediate(r));
          if (this.options.traffic.gone()) {
            this.options.log?.info({ afterMs: ms - (windowEnd - Date.now()), running: this.options.running() }, 'handover: traffic has left this node');
            break;
          }
        }
        await new Promise((r) => setTimeout(r, TRAFFIC_POLL_MS));
      }
      const deadline = this.deadline ?? Date.now();
      while (this.phase === 'handover' && this.options.running() > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(this.options.pollMs ?? 200, DRAIN_POLL_MS)));
      }
      if (this.phase === 'handover' && this.options.running() > 0) {
        await this.options.terminate(`drain timeout (${this.options.timeoutSeconds} s)`);
      }
    } finally {
      this.handingOver = false; // from here on, refuse again until released
      if (this.phase === 'handover') this.phase = 'draining';
    }
  }

  /** Ends a drain: cancels one in progress, or rejoins after a release. */
  async undrain(): Promise<DrainStatus> {
    if (this.releasing) await this.releasing;
    const wasDrained = this.phase === 'drained';
    this.clearTimers();
    if (this.phase === 'active') return this.status();
    if (wasDrained) {
      try {
        await this.source.rejoin();
      } catch (err) {
        this.lastError = `rejoin failed: ${(err as Error).message}`;
        throw err;
      }
    }
    await this.vipHold?.lift('undrain');
    this.phase = 'active';
    this.forwarding = false;
    this.since = null;
    this.deadline = null;
    this.lastError = null;
    this.options.log?.info({ rejoined: wasDrained }, 'undrain: accepting commands again');
    this.emit();
    return this.status();
  }

  private clearTimers(): void {
    if (this.poll) clearInterval(this.poll);
    if (this.timer) clearTimeout(this.timer);
    this.poll = this.timer = null;
  }
}
