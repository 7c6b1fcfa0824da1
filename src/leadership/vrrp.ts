import { readFileSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '../config/cluster.js';
import type { Logger } from '../log.js';
import { errors } from '../errors.js';
import { NotifyFifoReader, type NotifyEvent, type VrrpState } from './keepalived/notifyFifo.js';
import { hostProbes, type VrrpProbes } from './keepalived/probes.js';

export type { VrrpProbes } from './keepalived/probes.js';
import type { Leadership, LeadershipState } from './types.js';
import { StateEmitter } from './stateEmitter.js';

/**
 * VRRP leadership — BEST EFFORT, NOT A FENCE.
 *
 * keepalived decides. This node leads only while ALL of these hold, checked at the
 * moment current() is called (so the gate sees the truth, not the last poll):
 *   1. the VIP is on the configured local interface,
 *   2. keepalived is alive (its pid file names a live `keepalived` process, and the
 *      VRRP child too when its pid file is configured),
 *   3. that same keepalived process last reported MASTER on the notify FIFO.
 * A VIP orphaned by a crashed keepalived (it keeps answering ARP until the new
 * master's gratuitous ARP) therefore does not make a leader, and neither does a
 * MASTER report from a keepalived that has since died or been replaced.
 *
 * What VRRP cannot do: during a partition between the gateways both keepalived
 * instances become MASTER and both nodes lead; a paused or slow node cannot be
 * stopped by its peer. The token below is unique and increasing in practice but it
 * is NOT a fencing token: nothing guarantees the old leader stopped before the new
 * one started. Use etcd mode where a double execution is not acceptable.
 *
 * Token = (max(persisted epoch, peers' epochs seen, unix ms) + 1) * 16 + node index.
 */
export const VRRP_TOKEN_NODE_SLOTS = 16n;

export interface VrrpInputs {
  started: boolean;
  stopped?: boolean;
  released: boolean;
  vipLocal: boolean;
  keepalivedPid: number | null;
  /** Last notify-FIFO state for our instance, and the keepalived pid alive when it came. */
  reported: { state: VrrpState; pid: number | null } | null;
  /** No report since start, but keepalived has run long enough that its VIP is its own. */
  inferMaster: boolean;
}

/** Whether the inputs make this node the leader, and if not, why (for /readyz and refusals). */
export function vrrpDecision(i: VrrpInputs): { leader: true } | { leader: false; reason: string } {
  if (i.stopped) return { leader: false, reason: 'stopped' };
  if (!i.started) return { leader: false, reason: 'starting' };
  if (i.released) return { leader: false, reason: 'released after drain' };
  if (i.keepalivedPid === null) return { leader: false, reason: 'keepalived is not running' };
  const masterReported = i.reported !== null && i.reported.state === 'MASTER' && i.reported.pid === i.keepalivedPid;
  if (!masterReported) {
    if (i.reported === null && i.inferMaster && i.vipLocal) return { leader: true };
    if (i.reported === null) return { leader: false, reason: 'keepalived has not reported a state yet' };
    if (i.reported.pid !== i.keepalivedPid) return { leader: false, reason: 'keepalived restarted; waiting for its state' };
    return { leader: false, reason: `keepalived reports ${i.reported.state}` };
  }
  if (!i.vipLocal) return { leader: false, reason: 'keepalived reports MASTER but the VIP is not on this node' };
  return { leader: true };
}

/** The token for a new term: see the class comment. */
export function vrrpToken(epoch: bigint, nodeIndex: number): bigint {
  return epoch * VRRP_TOKEN_NODE_SLOTS + BigInt(nodeIndex);
}

export function nextEpoch(persisted: bigint, peersSeen: bigint, nowMs: number): bigint {
  let max = persisted > peersSeen ? persisted : peersSeen;
  const now = BigInt(Math.floor(nowMs));
  if (now > max) max = now;
  return max + 1n;
}

/** Epoch of a token minted by vrrpToken. */
export const epochOfToken = (token: bigint): bigint => token / VRRP_TOKEN_NODE_SLOTS;

interface PeerView {
  node: string;
  token: bigint | null;
  at: number;
}

export interface VrrpLeadershipOptions {
  node: string;
  cluster: Cluster;
  log: Logger;
  probes?: VrrpProbes;
  /** Without a notify report, treat an alive keepalived holding the VIP as MASTER after it ran this long. */
  inferAfterMs?: number;
  /** Read the notify FIFO (tests may feed events with notify()). */
  readFifo?: boolean;
  /** The cluster's token (gateway.http.tokenFile), sent to the peers' GET /leader as a bearer token. */
  peerToken?: string;
}

export class VrrpLeadership implements Leadership {
  readonly kind = 'vrrp';
  private readonly emitter: StateEmitter;
  private readonly nodeIndex: number;
  private readonly probes: VrrpProbes;
  private readonly epochFile: string;
  private readonly fifo: NotifyFifoReader | null;
  private state: LeadershipState;
  private started = false;
  private stopped = false;
  private released = false;
  private reported: { state: VrrpState; pid: number | null } | null = null;
  private persistedEpoch = 0n;
  private peersEpoch = 0n;
  private readonly peers = new Map<string, PeerView>();
  private poll: NodeJS.Timeout | null = null;
  private peerPoll: NodeJS.Timeout | null = null;
  private emitQueued = false;
  private lastEmitted: LeadershipState | null = null;

  constructor(private readonly opts: VrrpLeadershipOptions) {
    const { cluster, node } = opts;
    this.nodeIndex = cluster.nodes.findIndex((n) => n.name === node);
    if (this.nodeIndex < 0) throw errors.clusterNodeUnknown(node, 'the cluster file');
    if (this.nodeIndex >= Number(VRRP_TOKEN_NODE_SLOTS)) {
      throw errors.leadershipVrrpTooManyNodes(VRRP_TOKEN_NODE_SLOTS, node, this.nodeIndex);
    }
    this.emitter = new StateEmitter(opts.log);
    this.probes = opts.probes ?? hostProbes(cluster);
    this.epochFile = join(cluster.stateDir, `vrrp-epoch-${node}`);
    this.fifo = opts.readFifo === false ? null : new NotifyFifoReader({ path: cluster.notifyFifo, log: opts.log });
    this.state = { role: 'standby', token: null, since: Date.now(), reason: 'starting' };
  }

  current(): LeadershipState {
    this.refresh();
    return this.state;
  }

  onChange(listener: (state: LeadershipState) => void): () => void {
    return this.emitter.on(listener);
  }

  async start(): Promise<void> {
    this.persistedEpoch = this.readEpoch();
    if (this.fifo) {
      this.fifo.onEvent((e) => this.notify(e));
      this.fifo.onEof(() => {
        this.opts.log.info({ notifyFifo: this.opts.cluster.notifyFifo }, 'notify FIFO closed by keepalived; waiting for it to come back');
        this.refresh();
      });
      this.fifo.start();
    }
    this.started = true;
    const { pollIntervalMs, peerPollIntervalMs } = this.opts.cluster.vrrp;
    this.poll = setInterval(() => this.refresh(), pollIntervalMs);
    this.poll.unref();
    if (peerPollIntervalMs > 0 && this.opts.cluster.gateway.http?.enabled !== false && this.opts.cluster.nodes.length > 1) {
      this.peerPoll = setInterval(() => void this.pollPeers(peerPollIntervalMs), peerPollIntervalMs);
      this.peerPoll.unref();
      void this.pollPeers(peerPollIntervalMs);
    }
    this.refresh();
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    if (this.peerPoll) clearInterval(this.peerPoll);
    this.poll = this.peerPoll = null;
    this.fifo?.stop();
    this.stopped = true;
    this.refresh();
  }

  /** VRRP hands over through the track file (-254, written by the gateway's TrackFileWriter). */
  async release(): Promise<void> {
    this.released = true;
    this.refresh();
  }

  async rejoin(): Promise<void> {
    this.released = false;
    this.refresh();
  }

  /** One notify-FIFO event (also used by tests). */
  notify(event: NotifyEvent): void {
    if (event.kind !== 'INSTANCE' || event.name !== this.opts.cluster.vrrp.instance) return;
    // MASTER_RX_LOWER_PRI: a master saw a lower-priority advert; its state is unchanged.
    if (event.state === 'MASTER_RX_LOWER_PRI') return;
    const state: VrrpState = event.state === 'DELETED' ? 'STOP' : event.state;
    this.reported = { state, pid: this.probes.keepalivedPid() };
    this.opts.log.info({ vrrp: state, priority: event.priority, keepalivedPid: this.reported.pid }, 'keepalived reported a state');
    this.refresh();
  }

  private inputs(): VrrpInputs {
    const pid = this.probes.keepalivedPid();
    const vipLocal = this.probes.vipLocal();
    let inferMaster = false;
    if (this.reported === null && pid !== null && vipLocal) {
      const age = this.probes.processAgeMs(pid);
      inferMaster = age !== null && age >= (this.opts.inferAfterMs ?? 3000);
    }
    return { started: this.started, stopped: this.stopped, released: this.released, vipLocal, keepalivedPid: pid, reported: this.reported, inferMaster };
  }

  /** Re-evaluates now; updates the state synchronously, tells listeners on the next tick. */
  private refresh(): void {
    const inputs = this.inputs();
    const decision = vrrpDecision(inputs);
    const prev = this.state;
    if (decision.leader) {
      if (prev.role === 'leader') return;
      if (inputs.reported === null) this.opts.log.warn('no keepalived report since start; keepalived has held the VIP for a while, so leading as MASTER');
      const epoch = nextEpoch(this.persistedEpoch, this.peersEpoch, Date.now());
      this.persistEpoch(epoch);
      this.state = { role: 'leader', token: vrrpToken(epoch, this.nodeIndex), leader: this.opts.node, since: Date.now() };
    } else {
      const other = this.knownLeader(inputs);
      const next: LeadershipState = {
        role: 'standby',
        token: other?.token ?? null,
        ...(other ? { leader: other.node } : {}),
        since: prev.role === 'standby' ? prev.since : Date.now(),
        reason: decision.reason,
      };
      if (prev.role === 'standby' && prev.reason === next.reason && prev.leader === next.leader && prev.token === next.token) return;
      this.state = next;
    }
    this.queueEmit();
  }

  /** Who leads elsewhere: a peer that answered /leader recently, or the only peer while keepalived reports BACKUP. */
  private knownLeader(inputs: VrrpInputs): { node: string; token: bigint | null } | null {
    const fresh = Date.now() - 3 * Math.max(this.opts.cluster.vrrp.peerPollIntervalMs, 500);
    let best: PeerView | null = null;
    for (const p of this.peers.values()) {
      if (p.at < fresh) continue;
      if (!best || (p.token ?? -1n) > (best.token ?? -1n)) best = p;
    }
    if (best) return { node: best.node, token: best.token };
    const others = this.opts.cluster.nodes.filter((n) => n.name !== this.opts.node);
    if (others.length === 1 && inputs.reported?.state === 'BACKUP' && inputs.reported.pid === inputs.keepalivedPid && inputs.keepalivedPid !== null) {
      // VRRP BACKUP means a master's adverts arrive; with two nodes it can only be the other one.
      return { node: others[0]!.name, token: null };
    }
    return null;
  }

  private queueEmit(): void {
    if (this.emitQueued) return;
    this.emitQueued = true;
    queueMicrotask(() => {
      this.emitQueued = false;
      const state = this.state;
      if (this.lastEmitted === state) return;
      this.lastEmitted = state;
      this.emitter.emit(state);
    });
  }

  private async pollPeers(intervalMs: number): Promise<void> {
    const timeout = Math.min(Math.max(intervalMs - 50, 100), 1000);
    const headers: Record<string, string> = this.opts.peerToken === undefined ? {} : { authorization: `Bearer ${this.opts.peerToken}` };
    await Promise.all(
      this.opts.cluster.nodes
        .filter((n) => n.name !== this.opts.node)
        .map(async (peer) => {
          try {
            const res = await fetch(`http://${peer.address}:${peer.httpPort}/leader`, { headers, signal: AbortSignal.timeout(timeout) });
            const body = (await res.json()) as { node?: unknown; token?: unknown };
            const token = typeof body.token === 'string' || typeof body.token === 'number' ? BigInt(body.token) : null;
            if (token !== null) {
              const epoch = epochOfToken(token);
              if (epoch > this.peersEpoch) this.peersEpoch = epoch;
            }
            if (res.status === 200 && body.node === peer.name) this.peers.set(peer.name, { node: peer.name, token, at: Date.now() });
            else this.peers.delete(peer.name);
          } catch {
            this.peers.delete(peer.name);
          }
        }),
    );
    this.refresh();
  }

  private readEpoch(): bigint {
    try {
      return BigInt(readFileSync(this.epochFile, 'utf8').trim());
    } catch {
      return 0n;
    }
  }

  private persistEpoch(epoch: bigint): void {
    this.persistedEpoch = epoch;
    try {
      mkdirSync(this.opts.cluster.stateDir, { recursive: true });
      const tmp = `${this.epochFile}.tmp`;
      writeFileSync(tmp, `${epoch}\n`);
      renameSync(tmp, this.epochFile);
    } catch (err) {
      this.opts.log.warn({ file: this.epochFile, err: (err as Error).message }, 'cannot persist the vrrp epoch; tokens still follow the clock');
    }
  }
}
