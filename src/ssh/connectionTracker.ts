import type { Socket } from 'node:net';
import { unmapIPv4 } from '../address.js';
import type { Logger } from '../log.js';
import type { PatchedConnection } from './ssh2Internals.js';

export interface PeerAddress {
  address: string;
  port: number;
}

/**
 * What the server knows about its open client sockets (SSH and forwarded): who is
 * behind each, where it arrived and where it is relayed, and whether its login is
 * done and its first command decided. The drain and handover read it.
 */
export class ConnectionTracker {
  private readonly sockets = new Set<Socket>();
  private readonly peers = new WeakMap<Socket, PeerAddress>();
  /** Sockets relayed to another node: no login deadline here, the target has its own. */
  private readonly forwarded = new WeakSet<Socket>();
  private forwardedOpen = 0;
  /** Where each forwarded socket is relayed (for what a drain cuts). */
  private readonly forwardedTo = new WeakMap<Socket, string>();
  /** Open client sockets (SSH and forwarded) per local address they arrived on. */
  private readonly openByLocal = new Map<string, number>();
  private readonly openViaListeners = new Map<string, Set<(count: number) => void>>();
  /** Accepted sockets whose connection has not had a command decided yet, with when they came. */
  private readonly undecided = new Map<Socket, number>();
  /** Sockets whose client has authenticated (the login deadline no longer applies). */
  private readonly authenticated = new WeakSet<Socket>();
  /** The ssh2 connection on each admitted socket, once ssh2 has read its version line. */
  private readonly connectionOf = new WeakMap<Socket, PatchedConnection>();

  constructor(private readonly log: Logger) {}

  get size(): number {
    return this.sockets.size;
  }

  /** Counts an accepted socket until it closes. */
  add(socket: Socket): void {
    this.sockets.add(socket);
    const local = unmapIPv4(socket.localAddress ?? '');
    this.countVia(local, 1);
    this.undecided.set(socket, Date.now());
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.undecided.delete(socket);
      this.countVia(local, -1);
    });
  }

  /** The real client (after PROXY) once known. */
  setPeer(socket: Socket, peer: PeerAddress): void {
    this.peers.set(socket, peer);
  }

  peerOf(socket: Socket): PeerAddress | undefined {
    return this.peers.get(socket);
  }

  /** "address:port" of the real client, or of the TCP peer before the PROXY header was read. */
  clientLabel(socket: Socket): string {
    const peer = this.peers.get(socket);
    return peer ? `${peer.address}:${peer.port}` : `${unmapIPv4(socket.remoteAddress ?? 'unknown')}:${socket.remotePort ?? 0}`;
  }

  /** The socket is relayed to the node named `target` (set before the relay starts). */
  markForwarded(socket: Socket, target: string): void {
    this.forwarded.add(socket);
    this.forwardedTo.set(socket, target);
    this.undecided.delete(socket); // its command is decided on the target
  }

  /** A relay began; call the returned function once it is over. */
  relayOpened(): () => void {
    this.forwardedOpen++;
    return () => {
      this.forwardedOpen--;
    };
  }

  isForwarded(socket: Socket): boolean {
    return this.forwarded.has(socket);
  }

  get forwardedCount(): number {
    return this.forwardedOpen;
  }

  setConnection(socket: Socket, connection: PatchedConnection): void {
    this.connectionOf.set(socket, connection);
  }

  connectionOn(socket: Socket): PatchedConnection | undefined {
    return this.connectionOf.get(socket);
  }

  markAuthenticated(socket: Socket): void {
    this.authenticated.add(socket);
  }

  isAuthenticated(socket: Socket): boolean {
    return this.authenticated.has(socket);
  }

  /** A command of this connection passed the leader gate (or was refused by it). */
  markDecided(socket: Socket): void {
    this.undecided.delete(socket);
  }

  /**
   * True while a connection accepted before `instant` (ms since epoch) is open and no
   * command of it has passed the leader gate yet: a handover waits for those.
   */
  undecidedBefore(instant: number): boolean {
    for (const acceptedAt of this.undecided.values()) if (acceptedAt < instant) return true;
    return false;
  }

  /** How many client sockets (SSH and forwarded) that arrived on `localAddress` (e.g. the VIP) are open. */
  openVia(localAddress: string): number {
    return this.openByLocal.get(unmapIPv4(localAddress)) ?? 0;
  }

  /** Calls `listener` with the new count whenever openVia(localAddress) changes; returns an unsubscribe. */
  onOpenViaChange(localAddress: string, listener: (count: number) => void): () => void {
    const key = unmapIPv4(localAddress);
    let set = this.openViaListeners.get(key);
    if (!set) this.openViaListeners.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.openViaListeners.get(key) === set) this.openViaListeners.delete(key);
    };
  }

  private countVia(localAddress: string, delta: 1 | -1): void {
    const count = (this.openByLocal.get(localAddress) ?? 0) + delta;
    if (count === 0) this.openByLocal.delete(localAddress);
    else this.openByLocal.set(localAddress, count);
    for (const listener of [...(this.openViaListeners.get(localAddress) ?? [])]) {
      try {
        listener(count);
      } catch (err) {
        this.log.error({ err: (err as Error).message, localAddress }, 'an openVia listener threw');
      }
    }
  }

  /** The open client connections: who, on which local address, and where relayed (null: served here). */
  describe(): Array<{ client: string; via: string; forwardedTo: string | null }> {
    return [...this.sockets].map((socket) => ({
      client: this.clientLabel(socket),
      via: `${unmapIPv4(socket.localAddress ?? 'unknown')}:${socket.localPort ?? 0}`,
      forwardedTo: this.forwardedTo.get(socket) ?? null,
    }));
  }

  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
