import type { Socket } from 'node:net';
import { unmapIPv4 } from '../address.js';
import { forwardConnection } from './forwarder.js';
import { encodeProxyV2 } from './proxyProtocol.js';
import type { ConnectionTracker, PeerAddress } from './connectionTracker.js';
import type { ServerServices } from './serverServices.js';

export interface ForwardDestination {
  host: string;
  port: number;
  /** The node there, named in the refusal a client gets if it cannot be reached. */
  name: string;
  /** Connect from this address (one the target lists as a cluster peer); default: the route's source. */
  localAddress?: string;
}

/**
 * Decides, per new connection, after the PROXY header of a trusted load balancer or peer
 * was read and before connection limits and ssh2, whether to relay it at TCP level (PROXY
 * v2 header first, carrying `peer`) to another node: null admits it here.
 */
export type ForwardTo = (socket: Socket, peer: PeerAddress) => ForwardDestination | null;

export const DEFAULT_FORWARD_CONNECT_TIMEOUT_MS = 3000;

/** Relays a client's connection to `target` (a draining node's leader), counted and logged. */
export function relayConnection(socket: Socket, peer: PeerAddress, target: ForwardDestination, tracker: ConnectionTracker, services: ServerServices, connectTimeoutMs: number): void {
  const { log, metrics, node } = services;
  tracker.markForwarded(socket, target.name);
  tracker.setPeer(socket, peer);
  const client = `${peer.address}:${peer.port}`;
  const to = `${target.host}:${target.port}`;
  let header: Buffer;
  try {
    header = encodeProxyV2({ source: peer, destination: { address: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 } });
  } catch (err) {
    log.error({ client, err: (err as Error).message }, 'cannot forward: no PROXY header for this connection; closing it');
    socket.destroy();
    return;
  }
  metrics.forwardedOpen.inc();
  const relayClosed = tracker.relayOpened();
  const started = Date.now();
  void forwardConnection(socket, target, header, { connectTimeoutMs, log, node }).then((r) => {
    metrics.forwardedOpen.dec();
    relayClosed();
    const result = !r.connected ? 'unreachable' : r.error ? 'broken' : 'relayed';
    metrics.forwardedConnections.inc({ result });
    log.debug({ client, target: to, leader: target.name, result, bytesUp: r.bytesUp, bytesDown: r.bytesDown, ms: Date.now() - started, err: r.error?.message }, 'forwarded connection closed');
  });
}
