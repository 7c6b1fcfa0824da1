import { createServer, type Server as NetServer } from 'node:net';
import ssh2 from 'ssh2';
import { unmapIPv4 } from '../address.js';
import type { HostKey } from './hostKeys.js';
import type { PublicKeyAuthenticator } from './auth.js';
import type { SessionServices } from './session.js';
import { algorithmProfile, servedHostKeyTypes } from './algorithms.js';
import type { AlgorithmPosture } from './algorithmPosture.js';
import { errors } from '../errors.js';
import { VERSION } from '../version.js';
import { setSynHold } from './synHold.js';
import type { PatchedServerConfig } from './ssh2Internals.js';
import { ConnectionTracker } from './connectionTracker.js';
import { ConnectionIntake } from './connectionIntake.js';
import { serveConnection } from './sshConnection.js';
import type { ForwardTo } from './relay.js';

export type { PeerAddress } from './connectionTracker.js';
export type { ForwardDestination, ForwardTo } from './relay.js';

export interface SshServerOptions {
  hostKeys: HostKey[];
  authenticator: PublicKeyAuthenticator;
  services: SessionServices;
  /** Records legacy algorithm use of authenticated connections (absent: not recorded). */
  posture?: AlgorithmPosture;
  /**
   * Cluster peers (node addresses, the VIP) whose PROXY v2 header is optional: they
   * forward clients during a drain and also connect directly. Load balancers
   * (proxyProtocol.trustedProxies) must always send one.
   */
  peerProxies?: Iterable<string>;
  /** Asked for every new connection once its real client is known; see ForwardTo. */
  forwardTo?: ForwardTo;
  /** How long a forwarded connection may take to reach its target (default 3000 ms). */
  forwardConnectTimeoutMs?: number;
}

/**
 * The SSH listener. It owns the TCP side (TCP_NODELAY, PROXY protocol, connection
 * limits: connectionIntake.ts) and hands each socket to ssh2 through injectSocket, so
 * protocol plumbing stays in ssh2 and policy stays here (sshConnection.ts).
 */
export class SshServer {
  private readonly ssh: InstanceType<typeof ssh2.Server>;
  private readonly listeners: NetServer[] = [];
  private readonly tracker: ConnectionTracker;
  private readonly intake: ConnectionIntake;

  constructor(private readonly options: SshServerOptions) {
    const { services } = options;
    const { config, log } = services;
    const profile = algorithmProfile(config.auth.allowSshRsaSha1);
    const served = servedHostKeyTypes(profile);
    for (const key of options.hostKeys) {
      if (!served.has(key.type)) log.warn({ path: key.path, type: key.type }, `host key ${key.path} (${key.type}) not served: ${key.type} host keys are offered only with auth.allowSshRsaSha1: true`);
    }
    if (!options.hostKeys.some((k) => served.has(k.type))) {
      throw errors.hostKeyInvalid(
        options.hostKeys.map((k) => k.path).join(', '),
        'none of these host keys can be served with auth.allowSshRsaSha1: false; add an ed25519 or RSA (>= 2048 bits) host key',
      );
    }
    this.tracker = new ConnectionTracker(log);
    const sshConfig: PatchedServerConfig = {
      hostKeys: options.hostKeys.map((k) => k.pem),
      ident: `execgate_${VERSION}`,
      keepaliveInterval: config.limits.keepaliveIntervalSeconds * 1000,
      keepaliveCountMax: config.limits.keepaliveCountMax,
      algorithms: profile.algorithms,
      serverSigAlgs: profile.serverSigAlgs, // read by patches/ssh2+*.patch: the EXT_INFO server-sig-algs list
    };
    this.ssh = new ssh2.Server(sshConfig, (client, info) => serveConnection(client, info, { services, authenticator: options.authenticator, tracker: this.tracker, posture: options.posture }));
    this.ssh.on('error', (err: Error) => log.error({ err: err.message }, 'ssh server error'));
    this.intake = new ConnectionIntake({
      services,
      tracker: this.tracker,
      peerProxies: options.peerProxies,
      forwardTo: options.forwardTo,
      forwardConnectTimeoutMs: options.forwardConnectTimeoutMs,
      admitted: (socket) => this.ssh.injectSocket(socket), // ssh2 resumes the (paused) socket once its parser is ready
    });
  }

  get connectionCount(): number {
    return this.tracker.size;
  }

  /**
   * True while a connection accepted before `instant` (ms since epoch) is open and no
   * command of it has passed the leader gate yet: a handover waits for those.
   */
  undecidedBefore(instant: number): boolean {
    return this.tracker.undecidedBefore(instant);
  }

  /** Replaces (or with null removes) the forwarding decision; applies to connections accepted from now on. */
  setForwardTo(forwardTo: ForwardTo | null): void {
    this.intake.setForwardTo(forwardTo);
  }

  /** Open connections this node relays to another one. */
  get forwardedCount(): number {
    return this.tracker.forwardedCount;
  }

  /** How many client sockets (SSH and forwarded) that arrived on `localAddress` (e.g. the VIP) are open. */
  openVia(localAddress: string): number {
    return this.tracker.openVia(localAddress);
  }

  /** Calls `listener` with the new count whenever openVia(localAddress) changes; returns an unsubscribe. */
  onOpenViaChange(localAddress: string, listener: (count: number) => void): () => void {
    return this.tracker.onOpenViaChange(localAddress, listener);
  }

  /** Adds a listener; may be called for several addresses (node address, VIP). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const tcp = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.intake.accept(socket));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(errors.listenFailed(host, port, err.message));
      tcp.once('error', onError);
      tcp.listen(port, host, () => {
        tcp.off('error', onError);
        tcp.on('error', (err) => this.options.services.log.error({ err: err.message, host, port }, 'listener error'));
        this.listeners.push(tcp);
        const addr = tcp.address();
        resolve({ host, port: typeof addr === 'object' && addr ? addr.port : port });
      });
    });
  }

  /**
   * Holds (true) or admits again (false) new connections to the listener on `host`
   * (the VIP during a drain): their SYNs wait in the client's TCP instead of being
   * accepted here. Rejects when there is no such listener or the filter fails.
   */
  holdNewConnections(host: string, hold: boolean): Promise<void> {
    const listener = this.listeners.find((l) => {
      const addr = l.address();
      return typeof addr === 'object' && addr !== null && unmapIPv4(addr.address) === unmapIPv4(host);
    });
    if (!listener) return Promise.reject(new Error(`no SSH listener on ${host} (vip.bind: nonlocal listens there)`));
    return setSynHold(listener, hold);
  }

  /** True while every listener accepts connections. */
  get listening(): boolean {
    return this.listeners.length > 0 && this.listeners.every((l) => l.listening);
  }

  /** Stops accepting; existing connections are left to the caller's shutdown. */
  stopListening(): Promise<void> {
    // close() stops accepting at once; its callback waits for every open connection,
    // which a shutdown ends itself (destroyConnections), so it is not awaited.
    for (const l of this.listeners) l.close();
    return Promise.resolve();
  }

  /** The open client connections: who, on which local address, and where relayed (null: served here). */
  describeConnections(): Array<{ client: string; via: string; forwardedTo: string | null }> {
    return this.tracker.describe();
  }

  destroyConnections(): void {
    this.tracker.destroyAll();
  }
}
