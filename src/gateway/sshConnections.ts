/** What a drain and the load-balancer probe read of the SSH server (src/ssh/server.ts), and what a drain's deadline cuts. */
export interface SshConnectionsView {
  /** True while a connection accepted before `instant` has not had a command decided yet. */
  undecidedBefore(instant: number): boolean;
  /** Open client connections (SSH and forwarded) that arrived on `localAddress`. */
  openVia(localAddress: string): number;
  /** Open connections relayed to another node. */
  readonly forwardedCount: number;
  /** Holds (true) or admits again (false) new connections on the listener on `host`. */
  holdNewConnections(host: string, hold: boolean): Promise<void>;
  describeConnections(): Array<{ client: string; via: string; forwardedTo: string | null }>;
  destroyConnections(): void;
}

/**
 * The SSH server as the drain controller sees it, bound once the server exists: the
 * server is built after the drain controller (its sessions ask the drain's gate), and the
 * drain only reads the server from its callbacks, which run once the gateway listens.
 */
export class LateSshConnections implements SshConnectionsView {
  private server: SshConnectionsView | null = null;

  bind(server: SshConnectionsView): void {
    this.server = server;
  }

  private get bound(): SshConnectionsView {
    if (!this.server) throw new Error('the SSH server is not built yet');
    return this.server;
  }

  undecidedBefore(instant: number): boolean {
    return this.bound.undecidedBefore(instant);
  }

  openVia(localAddress: string): number {
    return this.bound.openVia(localAddress);
  }

  get forwardedCount(): number {
    return this.bound.forwardedCount;
  }

  holdNewConnections(host: string, hold: boolean): Promise<void> {
    return this.bound.holdNewConnections(host, hold);
  }

  describeConnections(): ReturnType<SshConnectionsView['describeConnections']> {
    return this.bound.describeConnections();
  }

  destroyConnections(): void {
    this.bound.destroyConnections();
  }
}
