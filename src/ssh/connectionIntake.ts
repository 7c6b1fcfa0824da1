import type { Socket } from 'node:net';
import { unmapIPv4 } from '../address.js';
import { KeyedCounter } from './limits.js';
import { readOptionalProxyHeader, readProxyHeader, type ProxiedAddress } from './proxyProtocol.js';
import { disconnectBeforeKex, DISCONNECT_PROTOCOL_ERROR, DISCONNECT_TOO_MANY_CONNECTIONS } from './earlyDisconnect.js';
import { coalesceWrites } from './ssh2Internals.js';
import { armLoginGrace } from './loginGrace.js';
import { DEFAULT_FORWARD_CONNECT_TIMEOUT_MS, relayConnection, type ForwardDestination, type ForwardTo } from './relay.js';
import type { ConnectionTracker, PeerAddress } from './connectionTracker.js';
import type { ServerServices } from './serverServices.js';

/** A peer that sends nothing this long after connecting is a direct client that waits for our version line. */
const PEER_DIRECT_AFTER_MS = 1000;

export interface ConnectionIntakeOptions {
  services: ServerServices;
  tracker: ConnectionTracker;
  /** Cluster peers whose PROXY v2 header is optional (see SshServerOptions.peerProxies). */
  peerProxies?: Iterable<string>;
  forwardTo?: ForwardTo;
  forwardConnectTimeoutMs?: number;
  /** Hands an admitted socket to ssh2. */
  admitted: (socket: Socket) => void;
}

/**
 * The accept path of every TCP connection: socket options, the login deadline, the
 * PROXY header of a load balancer or peer, then either a relay to another node
 * (forwardTo) or the connection limits on the real client address and ssh2.
 */
export class ConnectionIntake {
  private readonly connections: KeyedCounter;
  private readonly trustedProxies: Set<string>;
  private readonly peerProxies: Set<string>;
  private forwardTo: ForwardTo | null;

  constructor(private readonly options: ConnectionIntakeOptions) {
    const { config } = options.services;
    this.connections = new KeyedCounter(config.limits.maxConnections, config.limits.maxConnectionsPerSource);
    this.trustedProxies = new Set(config.proxyProtocol.trustedProxies);
    // a load balancer stays strict even if it is also listed as a peer
    this.peerProxies = new Set([...(options.peerProxies ?? [])].filter((a) => !this.trustedProxies.has(a)));
    this.forwardTo = options.forwardTo ?? null;
  }

  setForwardTo(forwardTo: ForwardTo | null): void {
    this.forwardTo = forwardTo;
  }

  accept(socket: Socket): void {
    const { config } = this.options.services;
    socket.on('error', () => {}); // ssh2 reports protocol-level errors; resets are routine
    socket.setNoDelay(true);
    // TCP keepalive finds peers that vanished without a FIN (before SSH keepalive starts).
    socket.setKeepAlive(true, config.limits.keepaliveIntervalSeconds * 1000);
    coalesceWrites(socket);
    this.options.tracker.add(socket);
    armLoginGrace(socket, this.options.tracker, config.limits.loginGraceSeconds, this.options.services.log);
    const remote = unmapIPv4(socket.remoteAddress ?? 'unknown');
    const direct = { address: remote, port: socket.remotePort ?? 0 };
    const real = (info: ProxiedAddress | null) => (info?.address ? { address: unmapIPv4(info.address), port: info.port ?? 0 } : direct);
    const graceMs = config.limits.loginGraceSeconds * 1000;
    if (this.trustedProxies.has(remote)) {
      readProxyHeader(socket, graceMs).then(
        (info) => this.route(socket, real(info)),
        (err: Error) => this.refuse(socket, `bad PROXY header from load balancer ${remote}: ${err.message}`, 'refused_proxy', { proxy: remote }, DISCONNECT_PROTOCOL_ERROR),
      );
    } else if (this.peerProxies.has(remote)) {
      readOptionalProxyHeader(socket, graceMs, PEER_DIRECT_AFTER_MS).then(
        (info) => this.route(socket, real(info)),
        (err: Error) => this.refuse(socket, `bad PROXY header from cluster node ${remote}: ${err.message}`, 'refused_proxy', { proxy: remote }, DISCONNECT_PROTOCOL_ERROR),
      );
    } else {
      this.route(socket, direct);
    }
  }

  /** Forwards the connection if forwardTo says so, else admits it here. */
  private route(socket: Socket, peer: PeerAddress): void {
    if (socket.destroyed) return;
    const { services, tracker, forwardConnectTimeoutMs } = this.options;
    let target: ForwardDestination | null = null;
    try {
      target = this.forwardTo?.(socket, peer) ?? null;
    } catch (err) {
      services.log.error({ err: (err as Error).message }, 'forwardTo threw; serving the connection here');
    }
    if (target) relayConnection(socket, peer, target, tracker, services, forwardConnectTimeoutMs ?? DEFAULT_FORWARD_CONNECT_TIMEOUT_MS);
    else this.admit(socket, peer);
  }

  /** Connection limits apply to the real client address (after PROXY). */
  private admit(socket: Socket, peer: PeerAddress): void {
    const { limits } = this.options.services.config;
    const slot = this.connections.tryAcquire(peer.address);
    if (!slot.ok) {
      const reason =
        slot.limit === 'total'
          ? `too many connections (limits.maxConnections = ${limits.maxConnections}); try again later`
          : `too many connections from ${peer.address} (limits.maxConnectionsPerSource = ${limits.maxConnectionsPerSource}); try again later`;
      this.refuse(socket, reason, 'refused_limit', { client: peer.address });
      return;
    }
    socket.once('close', slot.release);
    this.options.tracker.setPeer(socket, peer);
    this.options.admitted(socket);
  }

  private refuse(socket: Socket, reason: string, metric: string, fields: Record<string, unknown>, code = DISCONNECT_TOO_MANY_CONNECTIONS): void {
    const { log, metrics } = this.options.services;
    metrics.sshConnections.inc({ result: metric });
    log.warn(fields, `connection refused: ${reason}`);
    disconnectBeforeKex(socket, code, `execgate: ${reason}`);
  }
}
