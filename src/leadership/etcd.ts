import type { Logger } from '../log.js';
import type { EtcdApi, EtcdKeyValue } from '../etcd/client.js';
import { connectEtcd } from '../etcd/connect.js';
import type { EtcdConnectionSettings } from '../config/etcdConnection.js';
import type { Leadership, LeadershipState } from './types.js';
import { leadershipChanged, StateEmitter } from './stateEmitter.js';
import { encodeElectionValue } from './handover/codec.js';
import { decodeContenders, evaluateElection, successorReadyFor } from './handover/election.js';
import { LeaseFence } from './leaseFence.js';
import { nextElectionPollMs } from './electionPoll.js';

/**
 * Leadership from an etcd 3 cluster: the safe (fencing) mode.
 *
 * Every node holds its own lease and one election key bound to it,
 * `<prefix>/<cluster>/leader/<node>-<leaseId>`, created with a put-if-absent txn. The
 * leader is the key with the lowest create revision; that revision is its fencing token
 * (strictly increasing across leaders, since every campaign creates a new key).
 *
 * The leader keeps its lease alive every ttl/3. Its fence deadline (leaseFence.ts) is the
 * send time of the last ACKNOWLEDGED keepalive (or of the grant) + the TTL etcd reported −
 * margin, on the monotonic clock: etcd can only expire the lease after that instant, so
 * the old leader has stopped (and killed its commands) before anybody else can take over.
 * current() compares the clock with the deadline on every call, so a leader past its
 * deadline answers "fenced" even before its timer fires (e.g. right after SIGCONT).
 *
 * A node whose lease is gone (deadline passed, keepalive TTL 0, key deleted) emits
 * "fenced" if it led, then campaigns again with a NEW lease and key: a token is never
 * reused. Standbys poll the election prefix to know the leader and its token.
 */

export interface EtcdLeadershipOptions {
  node: string;
  cluster: string;
  /** Key prefix, e.g. "/execgate". */
  prefix: string;
  ttlSeconds: number;
  marginSeconds: number;
  api: EtcdApi;
  log?: Logger;
  /** Monotonic milliseconds (performance.now() by default). */
  now?: () => number;
  /** How often the election prefix is read (default: ttl/8, at most 250 ms). */
  pollIntervalMs?: number;
  /** Delay before another campaign after etcd could not be reached (default 500 ms, backing off to 2 s). */
  retryMs?: number;
  /** How long start() waits for the first election result (default: min(ttl, 3 s)). */
  startWaitMs?: number;
}

interface Term {
  /** Increases with every campaign; async results from an older term are dropped. */
  id: number;
  leaseId: string | null;
  key: string;
  revision: bigint | null;
  ttlMs: number;
  timers: Set<ReturnType<typeof setTimeout>>;
  /** The next scheduled poll, so a command waiting for the lead can bring it forward. */
  pollTimer: ReturnType<typeof setTimeout> | null;
  polling: boolean;
}

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class EtcdLeadership implements Leadership {
  readonly kind = 'etcd';
  private state: LeadershipState;
  private readonly emitter: StateEmitter;
  private readonly now: () => number;
  private readonly electionPrefix: string;
  private readonly pollMs: number;
  private readonly retryBaseMs: number;
  private term: Term | null = null;
  private termSeq = 0;
  /** When this node must stop acting on its lease (as leader, or for its running commands). */
  private readonly leaseFence: LeaseFence;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  /** Commands waiting at this node's gate for the lead (see awaitLead). */
  private waitingForLead = 0;
  /** This leader announced a handover (announceHandover) and waits for the next in line. */
  private handingOver = false;
  /**
   * This node resigned admission (resign()) but keeps its lease: its running commands
   * finish under it, and are fenced (SIGKILL) if it is lost, exactly as a leader's.
   */
  private resigned = false;
  /** What this node's resigned key says about the VIP. */
  private holdsVip = false;
  private stopped = false;
  private released = false;
  private firstResult: (() => void) | null = null;
  /** Keys of this node's earlier terms: until their leases expire they are nobody's leadership. */
  private readonly oldKeys = new Set<string>();

  constructor(private readonly options: EtcdLeadershipOptions) {
    this.emitter = new StateEmitter(options.log);
    this.now = options.now ?? (() => performance.now());
    this.electionPrefix = `${options.prefix.replace(/\/+$/, '')}/${options.cluster}/leader/`;
    this.leaseFence = new LeaseFence(this.now, options.marginSeconds * 1000);
    this.pollMs = options.pollIntervalMs ?? Math.min(250, (options.ttlSeconds * 1000) / 8);
    this.retryBaseMs = options.retryMs ?? 500;
    this.state = { role: 'standby', token: null, since: Date.now(), reason: 'campaigning: waiting for etcd' };
  }

  /** The monotonic fence deadline of the current lease (for tests and status). */
  get fenceDeadline(): number {
    return this.leaseFence.at;
  }

  current(): LeadershipState {
    if (this.actsOnLease() && this.leaseFence.passed()) {
      this.fence(`lease not renewed in time (fence deadline passed ${Math.round(this.now() - this.leaseFence.at)} ms ago)`);
    }
    return this.state;
  }

  onChange(listener: (state: LeadershipState) => void): () => void {
    return this.emitter.on(listener);
  }

  async start(): Promise<void> {
    this.stopped = false;
    const first = new Promise<void>((resolve) => (this.firstResult = resolve));
    this.campaign();
    const waitMs = this.options.startWaitMs ?? Math.min(this.options.ttlSeconds * 1000, 3000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([first, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const old = this.endTerm();
    this.set({ role: 'standby', token: null, since: Date.now(), reason: 'stopped' });
    if (old?.leaseId) await this.revoke(old.leaseId, 'stop');
  }

  async release(): Promise<void> {
    this.released = true;
    this.handingOver = false;
    this.resigned = false;
    const old = this.endTerm();
    const expiresBy = this.leaseFence.expiresBy;
    this.set({ role: 'standby', token: null, since: Date.now(), reason: 'released: not campaigning until rejoin' });
    if (!old?.leaseId) return;
    if (!(await this.revoke(old.leaseId, 'release'))) {
      // Could not revoke: another node can take over once the lease has expired.
      const wait = expiresBy - this.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  async rejoin(): Promise<void> {
    if (!this.released || this.stopped) return;
    this.released = false;
    this.set({ role: 'standby', token: null, since: Date.now(), reason: 'campaigning after rejoin' });
    this.campaign();
  }

  // ---- state -------------------------------------------------------------------------

  private set(state: LeadershipState): void {
    const prev = this.state;
    this.state = state;
    const same = prev.role === state.role && prev.token === state.token && prev.leader === state.leader && prev.reason === state.reason && !leadershipChanged(prev, state);
    if (same) {
      this.state = prev; // keep "since"
      return;
    }
    const fields = { role: state.role, token: state.token?.toString() ?? null, leader: state.leader ?? null, reason: state.reason ?? null };
    if (state.role === 'fenced') this.options.log?.warn(fields, 'etcd leadership: fenced');
    else this.options.log?.info(fields, 'etcd leadership state');
    this.emitter.emit(state);
  }

  /** This node lost (or may have lost) its lease: fence if it led, then campaign afresh. */
  private fence(reason: string): void {
    const wasLeader = this.state.role === 'leader' || this.resigned;
    // A node that resigned is being drained: it stays out until rejoin().
    if (this.resigned) this.released = true;
    this.handingOver = false;
    this.resigned = false;
    this.endTerm();
    if (wasLeader) {
      this.set({ role: 'fenced', token: null, since: Date.now(), reason: `fenced: ${reason}` });
    } else if (this.state.role !== 'fenced') {
      this.set({ ...this.state, role: 'standby', reason: `lease lost: ${reason}; campaigning again` });
    }
    if (!this.stopped && !this.released) this.scheduleCampaign(0);
  }

  private endTerm(): Term | null {
    const old = this.term;
    this.term = null;
    if (old) for (const t of old.timers) clearTimeout(t);
    if (old?.key) this.oldKeys.add(old.key);
    this.leaseFence.reset();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    return old;
  }

  private live(term: Term): boolean {
    return this.term === term && !this.stopped;
  }

  private later(term: Term, ms: number, fn: () => void): ReturnType<typeof setTimeout> {
    const t = setTimeout(
      () => {
        term.timers.delete(t);
        if (this.live(term)) fn();
      },
      Math.max(0, ms),
    );
    term.timers.add(t);
    return t;
  }

  /**
   * A command reached this node and waits for the lead (the VIP or HAProxy moved here a
   * moment before the leadership): poll the election every FAST_POLL_MS instead of
   * pollMs until it is done, so a released or expired lease is taken over at once.
   * Returns the function that ends the wait.
   */
  awaitLead(): () => void {
    this.waitingForLead++;
    this.pollNow();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.waitingForLead--;
    };
  }

  /** Brings the next scheduled election poll forward (the interval is chosen after it). */
  private pollNow(): void {
    const term = this.term;
    if (term && !term.polling && term.pollTimer) {
      clearTimeout(term.pollTimer);
      term.timers.delete(term.pollTimer);
      term.pollTimer = null;
      void this.poll(term);
    }
  }

  private resolveFirst(): void {
    const r = this.firstResult;
    this.firstResult = null;
    r?.();
  }

  // ---- campaign ----------------------------------------------------------------------

  private scheduleCampaign(ms: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped && !this.released && !this.term) this.campaign();
    }, ms);
  }

  private campaign(): void {
    if (this.stopped || this.released) return;
    this.resigned = false;
    this.endTerm();
    const term: Term = { id: ++this.termSeq, leaseId: null, key: '', revision: null, ttlMs: 0, timers: new Set(), pollTimer: null, polling: false };
    this.term = term;
    void this.runCampaign(term);
  }

  private async runCampaign(term: Term): Promise<void> {
    const { api } = this.options;
    try {
      const sent = this.now();
      const grant = await api.grantLease(this.options.ttlSeconds);
      if (!this.live(term)) {
        void this.revoke(grant.id, 'superseded campaign');
        return;
      }
      term.leaseId = grant.id;
      term.ttlMs = grant.ttlSeconds * 1000;
      this.extendDeadline(term, sent, grant.ttlSeconds);
      term.key = `${this.electionPrefix}${this.options.node}-${BigInt(grant.id).toString(16)}`;
      const put = await api.putIfAbsent(term.key, this.options.node, grant.id);
      if (!this.live(term)) return;
      if (!put.kv) throw new Error('election key vanished right after its creation');
      term.revision = put.kv.createRevision;
      this.failures = 0;
      this.options.log?.debug({ key: term.key, revision: term.revision.toString(), ttl: grant.ttlSeconds }, 'etcd campaign: key created');
      this.later(term, term.ttlMs / 3, () => void this.keepAliveLoop(term));
      await this.poll(term);
    } catch (err) {
      if (!this.live(term)) return;
      const leaseId = term.leaseId;
      this.endTerm();
      if (leaseId) void this.revoke(leaseId, 'failed campaign');
      const reason = `etcd unreachable: ${describe(err)}`;
      if (this.state.role === 'fenced') this.set({ ...this.state, reason: `${this.state.reason?.split('; etcd unreachable')[0]}; ${reason}` });
      else this.set({ role: 'standby', token: null, since: Date.now(), reason });
      this.resolveFirst();
      this.failures++;
      this.scheduleCampaign(Math.min(this.retryBaseMs * 2 ** Math.min(this.failures - 1, 4), 2000));
    }
  }

  /** A leader, or a node that resigned while its commands run under its lease. */
  private actsOnLease(): boolean {
    return this.state.role === 'leader' || this.resigned;
  }

  private extendDeadline(term: Term, sentAt: number, ttlSeconds: number): void {
    if (this.leaseFence.extend(sentAt, ttlSeconds) && this.actsOnLease() && this.term === term) this.armFenceTimer();
  }

  private armFenceTimer(): void {
    this.leaseFence.arm(
      () => this.actsOnLease(),
      () => this.fence('lease not renewed before the fence deadline'),
    );
  }

  private async keepAliveLoop(term: Term, dueAt?: number): Promise<void> {
    const interval = term.ttlMs / 3;
    const sent = this.now();
    try {
      const { ttlSeconds } = await this.options.api.keepAlive(term.leaseId!);
      if (!this.live(term)) return;
      const rttMs = this.now() - sent;
      const timerLateMs = dueAt === undefined ? 0 : sent - dueAt;
      if (rttMs + timerLateMs > interval) {
        // The fence comes at ttl - margin without a renewal: say why it came close.
        this.options.log?.warn(
          { rttMs: Math.round(rttMs), timerLateMs: Math.round(timerLateMs), fenceInMs: Math.round(this.leaseFence.at - this.now()) },
          'etcd lease keepalive slow (etcd answered late, or this process ran its timer late)',
        );
      }
      if (ttlSeconds <= 0) {
        this.fence('etcd says the lease is gone (keepalive TTL 0)');
        return;
      }
      this.extendDeadline(term, sent, ttlSeconds);
      const wait = interval - (this.now() - sent);
      const due = this.now() + Math.max(0, wait);
      this.later(term, wait, () => void this.keepAliveLoop(term, due));
    } catch (err) {
      if (!this.live(term)) return;
      this.options.log?.debug({ err: describe(err) }, 'etcd keepalive failed');
      if (!this.actsOnLease() && this.leaseFence.passed()) {
        // A standby whose lease has surely expired: start over with a new one.
        this.fence(`lease expired while etcd was unreachable (${describe(err)})`);
        return;
      }
      this.later(term, Math.min(interval, 200), () => void this.keepAliveLoop(term));
    }
  }

  private async poll(term: Term): Promise<void> {
    term.polling = true;
    try {
      const { kvs } = await this.options.api.rangePrefix(this.electionPrefix);
      if (!this.live(term)) return;
      this.evaluate(term, kvs);
    } catch (err) {
      if (!this.live(term)) return;
      if (this.state.role === 'standby') {
        this.set({ ...this.state, reason: `etcd unreachable: ${describe(err)}` });
      }
    }
    term.polling = false;
    this.resolveFirst();
    if (!this.live(term)) return;
    // Fast while a handover is under way (this leader's, or the one this node takes over).
    const handover = this.handingOver || this.resigned || (this.state.successor === true && this.state.handover?.side === 'joining' && this.state.handover.id !== undefined);
    const next = nextElectionPollMs({ baseMs: this.pollMs, waitingForLead: this.waitingForLead > 0, handover, successor: this.state.successor === true });
    term.pollTimer = this.later(term, next, () => {
      term.pollTimer = null;
      void this.poll(term);
    });
  }

  private evaluate(term: Term, kvs: EtcdKeyValue[]): void {
    for (const key of this.oldKeys) if (!kvs.some((kv) => kv.key === key)) this.oldKeys.delete(key);
    const wasLeader = this.state.role === 'leader';
    const outcome = evaluateElection({ contenders: decodeContenders(kvs, this.electionPrefix), myKey: term.key, oldKeys: this.oldKeys, wasLeader });
    switch (outcome.kind) {
      case 'lost-key':
        this.fence('election key is gone from etcd (lease expired or revoked)');
        return;
      case 'displaced':
        // Someone else's candidate key is older than ours: ours must have been recreated. Never lead twice.
        this.fence('another election key is older than ours');
        return;
      case 'leader': {
        if (this.leaseFence.passed()) {
          this.fence('lease not renewed before the fence deadline');
          return;
        }
        const ready = this.handingOver && successorReadyFor(outcome.next, outcome.mine);
        this.set({
          role: 'leader',
          token: outcome.token,
          leader: this.options.node,
          since: Date.now(),
          ...(outcome.next ? { next: outcome.next.node } : {}),
          // The drain overlay owns the leaving view; the source only adds that the next in line is ready.
          ...(ready ? { handover: { side: 'leaving', startedAt: 0, admitting: true, trafficAway: true, successorReady: true } } : {}),
          ...(outcome.vipHeldBy ? { handover: { side: 'joining', vipHeldBy: outcome.vipHeldBy } } : {}),
        });
        if (!wasLeader) this.armFenceTimer();
        return;
      }
      case 'resigned': {
        const leader = outcome.leader;
        this.set({
          role: 'standby',
          token: leader?.createRevision ?? null,
          ...(leader ? { leader: leader.node } : {}),
          since: Date.now(),
          reason: `resigned${leader ? `: ${leader.node} leads (token ${leader.createRevision})` : ''}; running commands finish under this node's lease`,
        });
        return;
      }
      case 'own-old-key':
        this.set({ role: 'standby', token: null, since: Date.now(), reason: 'waiting for the previous lease of this node to expire' });
        return;
      case 'follower': {
        const { leader, successor, handoverId, vipHeldBy } = outcome;
        this.set({
          role: 'standby',
          token: leader?.createRevision ?? null,
          ...(leader ? { leader: leader.node } : {}),
          since: Date.now(),
          reason: leader ? `following ${leader.node} (token ${leader.createRevision})${handoverId ? ', which is handing over' : ''}${successor ? '; next in line' : ''}` : 'no candidate leads',
          successor,
          ...(handoverId || vipHeldBy ? { handover: { side: 'joining', ...(handoverId ? { id: handoverId } : {}), ...(vipHeldBy ? { vipHeldBy } : {}) } } : {}),
        });
        return;
      }
    }
  }

  /**
   * A drained leader tells the others it is handing over: its election key's value
   * becomes "<node> handover" (same key, lease and create revision, so the token is
   * unchanged). The next in line then asks load balancers for traffic (/leader 200)
   * before it leads, so there is no moment without a server to send connections to.
   */
  async announceHandover(): Promise<void> {
    const term = this.term;
    if (this.state.role !== 'leader' || !term?.leaseId || term.revision === null) return;
    try {
      const ok = await this.options.api.putIfCreated(term.key, encodeElectionValue(this.options.node, { kind: 'handover' }), term.leaseId, term.revision);
      if (!ok) this.options.log?.warn({ key: term.key }, 'etcd: could not announce the handover (election key changed)');
      else if (this.live(term) && this.state.role === 'leader') {
        this.handingOver = true;
        this.pollNow();
      }
    } catch (err) {
      this.options.log?.warn({ err: describe(err) }, 'etcd: could not announce the handover; the next in line learns of it when the lease goes');
    }
  }

  /**
   * The next in line tells the leader that announced handover `handoverId` (the mod
   * revision of its election key then) that every load balancer now sends new
   * connections here: its value becomes "<node> ready <id>". The id keeps an answer
   * to an older, cancelled handover from counting for a later one.
   */
  async announceReady(handoverId: string): Promise<void> {
    const term = this.term;
    const s = this.state;
    if (s.role !== 'standby' || s.successor !== true || s.handover?.side !== 'joining' || s.handover.id !== handoverId || !term?.leaseId || term.revision === null) return;
    try {
      const ok = await this.options.api.putIfCreated(term.key, encodeElectionValue(this.options.node, { kind: 'ready', handoverId }), term.leaseId, term.revision);
      if (!ok) this.options.log?.warn({ key: term.key }, 'etcd: could not say ready for the handover (election key changed)');
    } catch (err) {
      this.options.log?.warn({ err: describe(err) }, 'etcd: could not say ready for the handover; the leader goes on after its announce time');
    }
  }

  /**
   * Gives up admission now and keeps the lease: the election key's value becomes
   * "<node> resigned" (same key, lease and create revision), which is no candidate, so
   * the next candidate leads at its next poll with a larger token. This node's running
   * commands finish under the lease it keeps renewing; if it is lost they are fenced as
   * a leader's are. True when etcd took the change (false: still leading, or not leading).
   */
  async resign(holdsVip: boolean): Promise<boolean> {
    const term = this.term;
    if (this.state.role !== 'leader' || !term?.leaseId || term.revision === null) return false;
    this.holdsVip = holdsVip;
    const ok = await this.options.api.putIfCreated(term.key, encodeElectionValue(this.options.node, { kind: 'resigned', holdsVip }), term.leaseId, term.revision).catch((err: unknown) => {
      this.options.log?.warn({ err: describe(err) }, 'etcd: could not resign (etcd unreachable); handing over the strict way');
      return false;
    });
    if (!ok || !this.live(term)) return false;
    this.handingOver = false;
    this.resigned = true;
    this.options.log?.info({ key: term.key, holdsVip }, 'etcd: resigned admission; running commands finish under this lease');
    this.pollNow();
    return true;
  }

  /** After resign(true): the VIP has left (or is kept again), so the new leader may claim it. */
  async setVipHeld(held: boolean): Promise<void> {
    const term = this.term;
    if (!this.resigned || this.holdsVip === held || !term?.leaseId || term.revision === null) return;
    this.holdsVip = held;
    try {
      await this.options.api.putIfCreated(term.key, encodeElectionValue(this.options.node, { kind: 'resigned', holdsVip: held }), term.leaseId, term.revision);
    } catch (err) {
      this.options.log?.warn({ err: describe(err) }, 'etcd: could not say the VIP left; the new leader claims it when this lease ends');
    }
  }

  /** Best effort; true when etcd confirmed the lease is gone. */
  private async revoke(leaseId: string, why: string): Promise<boolean> {
    try {
      await this.options.api.revokeLease(leaseId);
      this.options.log?.info({ lease: leaseId, why }, 'etcd lease revoked');
      return true;
    } catch (err) {
      this.options.log?.warn({ lease: leaseId, why, err: describe(err) }, 'etcd lease revoke failed; it will expire by itself');
      return false;
    }
  }
}

export interface EtcdSettings extends EtcdConnectionSettings {
  ttlSeconds: number;
  marginSeconds: number;
  prefix: string;
}

/** The production wiring: the JSON-gateway client with timeouts derived from the TTL. */
export function createEtcdLeadership(node: string, cluster: string, settings: EtcdSettings, log?: Logger): EtcdLeadership {
  const requestTimeoutMs = Math.round(Math.min(1000, Math.max(200, (settings.ttlSeconds * 1000) / 4)));
  return new EtcdLeadership({
    node,
    cluster,
    prefix: settings.prefix,
    ttlSeconds: settings.ttlSeconds,
    marginSeconds: settings.marginSeconds,
    api: connectEtcd(settings, { node, key: 'leadership.etcd', requestTimeoutMs }),
    log,
  });
}
