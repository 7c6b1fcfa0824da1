import type { Leadership, LeadershipState, Role } from '../../src/leadership/types.js';

/**
 * An in-memory Leadership for unit tests: the test flips roles by hand and sees
 * every release()/rejoin() call.
 */
export class FakeLeadership implements Leadership {
  readonly kind = 'fake';
  readonly calls: string[] = [];
  /** Makes the next release() reject with this message. */
  failRelease: string | null = null;
  private state: LeadershipState;
  private readonly listeners = new Set<(s: LeadershipState) => void>();

  constructor(
    private readonly node: string,
    initial: Partial<LeadershipState> = {},
  ) {
    this.state = { role: 'leader', token: 7n, leader: node, since: Date.now(), ...initial };
  }

  current(): LeadershipState {
    return this.state;
  }

  onChange(listener: (s: LeadershipState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(state: Partial<LeadershipState> & { role: Role }): void {
    this.state = { token: null, since: Date.now(), ...state };
    for (const l of this.listeners) l(this.state);
  }

  lead(token: bigint): void {
    this.set({ role: 'leader', token, leader: this.node });
  }

  standBy(leader: string | undefined, token: bigint | null): void {
    this.set({ role: 'standby', token, ...(leader ? { leader } : {}), reason: leader ? `${leader} leads` : 'no leader elected' });
  }

  fence(): void {
    this.set({ role: 'fenced', token: null, reason: 'lease not renewed in time' });
  }

  async start(): Promise<void> {
    this.calls.push('start');
  }

  async stop(): Promise<void> {
    this.calls.push('stop');
  }

  async release(): Promise<void> {
    this.calls.push('release');
    if (this.failRelease) {
      const message = this.failRelease;
      this.failRelease = null;
      throw new Error(message);
    }
    this.standBy(undefined, null);
  }

  async rejoin(): Promise<void> {
    this.calls.push('rejoin');
    this.lead((this.state.token ?? 7n) + 1n);
  }
}
