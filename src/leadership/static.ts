import type { Leadership, LeadershipState } from './types.js';

/** A single node that always leads: the embedded default of `npm start`. */
export class StaticLeadership implements Leadership {
  readonly kind = 'static';
  private readonly state: LeadershipState;

  constructor(node: string, token = 1n) {
    this.state = { role: 'leader', token, leader: node, since: Date.now() };
  }

  current(): LeadershipState {
    return this.state;
  }

  onChange(_listener: (state: LeadershipState) => void): () => void {
    return () => {};
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}
