import type { Leadership, LeadershipState } from './types.js';
import { StateEmitter } from './stateEmitter.js';

/** A single node that always leads: the embedded default of `npm start`. */
export class StaticLeadership implements Leadership {
  readonly kind = 'static';
  private state: LeadershipState;
  private readonly emitter = new StateEmitter();

  constructor(
    private readonly node: string,
    private readonly token = 1n,
  ) {
    this.state = { role: 'leader', token, leader: node, since: Date.now() };
  }

  current(): LeadershipState {
    return this.state;
  }

  onChange(listener: (state: LeadershipState) => void): () => void {
    return this.emitter.on(listener);
  }

  private set(state: LeadershipState): void {
    this.state = state;
    this.emitter.emit(state);
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  /** A single node has nobody to hand over to: after a drain it stands by until rejoin. */
  async release(): Promise<void> {
    this.set({ role: 'standby', token: null, since: Date.now(), reason: 'released after drain' });
  }

  async rejoin(): Promise<void> {
    this.set({ role: 'leader', token: this.token, leader: this.node, since: Date.now() });
  }
}
