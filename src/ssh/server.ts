import { createServer, type Server as NetServer, type Socket } from 'node:net';
import ssh2, { type ClientInfo, type Connection, type NegotiatedAlgorithms } from 'ssh2';
import type { HostKey } from './hostKeys.js';
import type { PublicKeyAuthenticator, AuthenticatedIdentity } from './auth.js';
import { SessionHandler, type SessionServices } from './session.js';
import { KeyedCounter } from './limits.js';
import { encodeProxyV2, readOptionalProxyHeader, readProxyHeader, type ProxiedAddress } from './proxyProtocol.js';
import { forwardConnection } from './forwarder.js';
import { disconnectBeforeKex, DISCONNECT_PROTOCOL_ERROR, DISCONNECT_TOO_MANY_CONNECTIONS } from './earlyDisconnect.js';
import { algorithmProfile, servedHostKeyTypes } from './algorithms.js';
import { macName, type AlgorithmPosture } from './algorithmPosture.js';
import { errors } from '../errors.js';
import { VERSION } from '../version.js';
import { setSynHold } from './synHold.js';

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

export interface PeerAddress {
  address: string;
  port: number;
}

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

const DEFAULT_FORWARD_CONNECT_TIMEOUT_MS = 3000;
/** A peer that sends nothing this long after connecting is a direct client that waits for our version line. */
const PEER_DIRECT_AFTER_MS = 1000;

/**
 * ssh2 writes every packet (at most 32 KiB with OpenSSH) with its own socket.write:
 * one syscall each. Corking until the check phase of the current event-loop turn
 * sends everything this turn produced in one writev: a bulk stream's many pipe reads
 * per turn (64 KiB each, two packets) go out together. A lone packet still leaves in
 * the same turn (TCP_NODELAY stays on). Uncorking at the end of each tick instead
 * cost ~4x the syscalls (strace, 256 MiB of stdout: 38,900 against 10,500).
 */
function coalesceWrites(socket: Socket): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return write(...args);
  }) as typeof socket.write;
}

const unmapped = (a: string) => (a.startsWith('::ffff:') ? a.slice(7) : a);

/** SSH_MSG_DISCONNECT reason codes (RFC 4253 11.1). */
const DISCONNECT_BY_APPLICATION = 11;
const DISCONNECT_NO_MORE_AUTH_METHODS = 14;

/** Longer than any account name (Linux: 32 bytes); sshd reads the whole packet, we refuse early. */
const MAX_USERNAME_BYTES = 256;
/** An exec request carries the command plus channel id, request name, framing and padding. */
const EXEC_REQUEST_OVERHEAD = 64 * 1024;

/** The parts of ssh2's server-side Connection that the typings lack (added by patches/ssh2+*.patch). */
interface PatchedConnection {
  disconnect(reason: number, description: string): void;
  setMaxPacketSize(bytes: number, hint?: string): void;
}

/**
 * The SSH listener. It owns the TCP side (TCP_NODELAY, PROXY protocol, connection
 * limits) and hands each socket to ssh2 through injectSocket, so protocol plumbing
 * stays in ssh2 and policy stays here.
 */
export class SshServer {
  private readonly ssh: InstanceType<typeof ssh2.Server>;
  private readonly listeners: NetServer[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly peers = new WeakMap<Socket, PeerAddress>();
  private readonly connections: KeyedCounter;
  private readonly trustedProxies: Set<string>;
  private readonly peerProxies: Set<string>;
  private forwardTo: ForwardTo | null;
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

  constructor(private readonly options: SshServerOptions) {
    const { config, log } = options.services;
    this.connections = new KeyedCounter(config.limits.maxConnections, config.limits.maxConnectionsPerSource);
    this.trustedProxies = new Set(config.proxyProtocol.trustedProxies);
    // a load balancer stays strict even if it is also listed as a peer
    this.peerProxies = new Set([...(options.peerProxies ?? [])].filter((a) => !this.trustedProxies.has(a)));
    this.forwardTo = options.forwardTo ?? null;
    const profile = algorithmProfile(config.auth.allowSshRsaSha1);
    const served = servedHostKeyTypes(profile);
    for (const key of options.hostKeys) {
      if (!served.has(key.type)) log.warn({ path: key.path, type: key.type }, `host key ${key.path} (${key.type}) not served: ${key.type} host keys are offered only with auth.allowSshRsaSha1: true`);
    }
    if (!options.hostKeys.some((k) => served.has(k.type))) {
      throw errors.hostKeyInvalid(options.hostKeys.map((k) => k.path).join(', '), 'none of these host keys can be served with auth.allowSshRsaSha1: false; add an ed25519 or RSA (>= 2048 bits) host key');
    }
    this.ssh = new ssh2.Server(
      {
        hostKeys: options.hostKeys.map((k) => k.pem),
        ident: `execgate_${VERSION}`,
        keepaliveInterval: config.limits.keepaliveIntervalSeconds * 1000,
        keepaliveCountMax: config.limits.keepaliveCountMax,
        algorithms: profile.algorithms,
        // read by patches/ssh2+*.patch: the EXT_INFO server-sig-algs list
        serverSigAlgs: profile.serverSigAlgs,
      } as ssh2.ServerConfig,
      (client, info) => this.onConnection(client, info),
    );
    this.ssh.on('error', (err: Error) => log.error({ err: err.message }, 'ssh server error'));
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /**
   * True while a connection accepted before `instant` (ms since epoch) is open and no
   * command of it has passed the leader gate yet: a handover waits for those.
   */
  undecidedBefore(instant: number): boolean {
    for (const acceptedAt of this.undecided.values()) if (acceptedAt < instant) return true;
    return false;
  }

  /** Replaces (or with null removes) the forwarding decision; applies to connections accepted from now on. */
  setForwardTo(forwardTo: ForwardTo | null): void {
    this.forwardTo = forwardTo;
  }

  /** Open connections this node relays to another one. */
  get forwardedCount(): number {
    return this.forwardedOpen;
  }

  /** How many client sockets (SSH and forwarded) that arrived on `localAddress` (e.g. the VIP) are open. */
  openVia(localAddress: string): number {
    return this.openByLocal.get(unmapped(localAddress)) ?? 0;
  }

  /** Calls `listener` with the new count whenever openVia(localAddress) changes; returns an unsubscribe. */
  onOpenViaChange(localAddress: string, listener: (count: number) => void): () => void {
    const key = unmapped(localAddress);
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
        this.options.services.log.error({ err: (err as Error).message, localAddress }, 'an openVia listener threw');
      }
    }
  }

  private refuseSocket(socket: Socket, reason: string, metric: string, fields: Record<string, unknown>, code = DISCONNECT_TOO_MANY_CONNECTIONS): void {
    const { log, metrics } = this.options.services;
    metrics.sshConnections.inc({ result: metric });
    log.warn(fields, `connection refused: ${reason}`);
    disconnectBeforeKex(socket, code, `execgate: ${reason}`);
  }

  private onSocket(socket: Socket): void {
    const { config, log } = this.options.services;
    socket.on('error', () => {}); // ssh2 reports protocol-level errors; resets are routine
    socket.setNoDelay(true);
    // TCP keepalive finds peers that vanished without a FIN (before SSH keepalive starts).
    socket.setKeepAlive(true, config.limits.keepaliveIntervalSeconds * 1000);
    coalesceWrites(socket);
    this.sockets.add(socket);
    const local = unmapped(socket.localAddress ?? '');
    this.countVia(local, 1);
    this.undecided.set(socket, Date.now());
    // sshd's LoginGraceTime: from accept, covering the PROXY header, the version line,
    // key exchange and authentication. A socket that sends nothing is closed too.
    const loginTimer = setTimeout(() => {
      if (this.authenticated.has(socket) || this.forwarded.has(socket) || socket.destroyed) return;
      const peer = this.peers.get(socket);
      const client = peer ? `${peer.address}:${peer.port}` : `${unmapped(socket.remoteAddress ?? 'unknown')}:${socket.remotePort ?? 0}`;
      log.warn({ client, seconds: config.limits.loginGraceSeconds }, 'login grace time (limits.loginGraceSeconds) exceeded; disconnecting');
      const connection = this.connectionOf.get(socket);
      if (connection) connection.disconnect(DISCONNECT_BY_APPLICATION, `execgate: no authentication within limits.loginGraceSeconds = ${config.limits.loginGraceSeconds} s`);
      // end() alone leaves a silent peer's socket (and its slot) open until the peer closes
      socket.destroySoon();
      setTimeout(() => socket.destroy(), 1000).unref();
    }, config.limits.loginGraceSeconds * 1000);
    loginTimer.unref();
    socket.once('close', () => {
      clearTimeout(loginTimer);
      this.sockets.delete(socket);
      this.undecided.delete(socket);
      this.countVia(local, -1);
    });
    const remote = unmapped(socket.remoteAddress ?? 'unknown');
    const direct = { address: remote, port: socket.remotePort ?? 0 };
    const real = (info: ProxiedAddress | null) => (info?.address ? { address: unmapped(info.address), port: info.port ?? 0 } : direct);
    const graceMs = config.limits.loginGraceSeconds * 1000;
    if (this.trustedProxies.has(remote)) {
      readProxyHeader(socket, graceMs).then(
        (info) => this.route(socket, real(info)),
        (err: Error) => this.refuseSocket(socket, `bad PROXY header from load balancer ${remote}: ${err.message}`, 'refused_proxy', { proxy: remote }, DISCONNECT_PROTOCOL_ERROR),
      );
    } else if (this.peerProxies.has(remote)) {
      readOptionalProxyHeader(socket, graceMs, PEER_DIRECT_AFTER_MS).then(
        (info) => this.route(socket, real(info)),
        (err: Error) => this.refuseSocket(socket, `bad PROXY header from cluster node ${remote}: ${err.message}`, 'refused_proxy', { proxy: remote }, DISCONNECT_PROTOCOL_ERROR),
      );
    } else {
      this.route(socket, direct);
    }
  }

  /** Forwards the connection if forwardTo says so, else admits it here. */
  private route(socket: Socket, peer: PeerAddress): void {
    if (socket.destroyed) return;
    let target: ForwardDestination | null = null;
    try {
      target = this.forwardTo?.(socket, peer) ?? null;
    } catch (err) {
      this.options.services.log.error({ err: (err as Error).message }, 'forwardTo threw; serving the connection here');
    }
    if (target) this.forward(socket, peer, target);
    else this.admit(socket, peer);
  }

  private forward(socket: Socket, peer: PeerAddress, target: ForwardDestination): void {
    const { log, metrics, node } = this.options.services;
    this.forwarded.add(socket);
    this.forwardedTo.set(socket, target.name);
    this.undecided.delete(socket); // its command is decided on the target
    this.peers.set(socket, peer);
    const client = `${peer.address}:${peer.port}`;
    const to = `${target.host}:${target.port}`;
    let header: Buffer;
    try {
      header = encodeProxyV2({ source: peer, destination: { address: unmapped(socket.localAddress ?? ''), port: socket.localPort ?? 0 } });
    } catch (err) {
      log.error({ client, err: (err as Error).message }, 'cannot forward: no PROXY header for this connection; closing it');
      socket.destroy();
      return;
    }
    metrics.forwardedOpen.inc();
    this.forwardedOpen++;
    const started = Date.now();
    void forwardConnection(socket, target, header, { connectTimeoutMs: this.options.forwardConnectTimeoutMs ?? DEFAULT_FORWARD_CONNECT_TIMEOUT_MS, log, node }).then((r) => {
      metrics.forwardedOpen.dec();
      this.forwardedOpen--;
      const result = !r.connected ? 'unreachable' : r.error ? 'broken' : 'relayed';
      metrics.forwardedConnections.inc({ result });
      log.debug({ client, target: to, leader: target.name, result, bytesUp: r.bytesUp, bytesDown: r.bytesDown, ms: Date.now() - started, err: r.error?.message }, 'forwarded connection closed');
    });
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
      this.refuseSocket(socket, reason, 'refused_limit', { client: peer.address });
      return;
    }
    socket.once('close', slot.release);
    this.peers.set(socket, peer);
    this.ssh.injectSocket(socket); // ssh2 resumes the (paused) socket once its parser is ready
  }

  private onConnection(client: Connection, info?: ClientInfo): void {
    const { services } = this.options;
    const { log, config, metrics } = services;
    const socket = (client as unknown as { _sock: Socket })._sock;
    const peer = this.peers.get(socket) ?? { address: unmapped(socket?.remoteAddress ?? 'unknown'), port: socket?.remotePort ?? 0 };
    const clientLabel = `${peer.address}:${peer.port}`;
    let identity: AuthenticatedIdentity | null = null;

    const patched = client as unknown as PatchedConnection;
    if (socket) this.connectionOf.set(socket, patched);
    client.on('error', (err: Error & { code?: string; length?: number; limit?: number }) => {
      if (err.code === 'ERR_SSH_PACKET_TOO_LARGE') {
        // ssh2 (patched) has told the client why before closing
        log.warn(
          { client: clientLabel, user: identity?.username, bytes: err.length, limit: err.limit },
          `packet too large; disconnecting: ${err.message}${identity ? ` (a command line may have at most limits.maxCommandBytes = ${config.limits.maxCommandBytes} bytes)` : ' (before authentication)'}`,
        );
        return;
      }
      // A failed key exchange is the client's fault or an attack (a hostile key share, a
      // corrupted packet): worth a line, as sshd logs its kex failures.
      if ((err as { level?: string }).level === 'handshake') {
        log.warn({ client: clientLabel, err: err.message }, `key exchange failed; disconnected: ${err.message}`);
        return;
      }
      log.debug({ client: clientLabel, err: err.message }, 'connection error');
    });

    // Idle: no running command for idleTimeoutSeconds. Long silent jobs are not idle;
    // dead clients under them are found by SSH keepalive probes instead.
    let running = 0;
    let idleTimer: NodeJS.Timeout | null = null;
    const armIdle = () => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        log.info({ client: clientLabel, seconds: config.limits.idleTimeoutSeconds }, 'idle timeout (limits.idleTimeoutSeconds); disconnecting');
        client.end();
      }, config.limits.idleTimeoutSeconds * 1000);
      idleTimer.unref();
    };
    const activity = {
      commandDecided: () => {
        if (socket) this.undecided.delete(socket);
      },
      commandStarted: () => {
        running++;
        if (idleTimer) clearTimeout(idleTimer);
        idleTimer = null;
      },
      commandEnded: () => {
        if (--running === 0) armIdle();
      },
    };

    // Algorithm metrics for every completed key exchange (rekeys too); posture records
    // only authenticated connections (a scanner needs nothing kept on).
    const ident = info?.header?.identRaw ?? '';
    const { posture } = this.options;
    let handshakes = 0;
    let negotiated: NegotiatedAlgorithms | null = null;
    client.on('handshake', (n: NegotiatedAlgorithms) => {
      try {
        negotiated = n;
        metrics.sshHandshakes.inc({ type: handshakes++ === 0 ? 'initial' : 'rekey' });
        metrics.sshNegotiatedKex.inc({ algorithm: n.kex });
        metrics.sshNegotiatedHostKey.inc({ algorithm: n.serverHostKey });
        for (const c of new Set([n.cs.cipher, n.sc.cipher])) metrics.sshNegotiatedCipher.inc({ algorithm: c });
        for (const m of new Set([n.cs.mac, n.sc.mac])) metrics.sshNegotiatedMac.inc({ algorithm: macName(m) });
        for (const z of new Set([n.cs.compress, n.sc.compress])) metrics.sshNegotiatedCompression.inc({ algorithm: z });
        if (identity) posture?.recordHandshake(n, ident);
      } catch (err) {
        log.warn({ client: clientLabel, err: (err as Error).message }, 'could not count the negotiated algorithms');
      }
    });

    client.once('close', () => {
      if (idleTimer) clearTimeout(idleTimer);
      if (!identity) metrics.sshConnections.inc({ result: 'closed_unauthenticated' });
    });

    // sshd's MaxAuthTries: failures per connection, the first "none" probe excepted.
    const maxAuthTries = config.limits.maxAuthTries;
    let attempts = 0;
    let failures = 0;
    let refused = false;
    const refuse = (reason: string, fields: Record<string, unknown>) => {
      refused = true;
      metrics.sshConnections.inc({ result: 'refused_auth' });
      log.warn({ client: clientLabel, ...fields }, `authentication refused: ${reason}; disconnecting`);
      patched.disconnect(DISCONNECT_NO_MORE_AUTH_METHODS, `execgate: ${reason}`);
    };
    client.on('authentication', (ctx) => {
      if (refused) return; // requests ssh2 had queued before the disconnect
      attempts++;
      const usernameBytes = Buffer.byteLength(ctx.username);
      if (usernameBytes > MAX_USERNAME_BYTES) {
        return refuse(`username of ${usernameBytes} bytes (at most ${MAX_USERNAME_BYTES})`, { usernameBytes });
      }
      const free = attempts === 1 && ctx.method === 'none';
      const reject = ctx.reject.bind(ctx);
      ctx.reject = ((...args: Parameters<typeof ctx.reject>) => {
        if (refused) return; // an asynchronous decision after the disconnect
        if (!free && ++failures >= maxAuthTries) {
          return refuse(`too many authentication failures (${failures}; limits.maxAuthTries = ${maxAuthTries})`, { user: ctx.username, failures });
        }
        reject(...args);
      }) as typeof ctx.reject;
      this.options.authenticator.handle(ctx, { address: peer.address, label: clientLabel }, (who) => {
        identity = who;
        if (ctx.method === 'publickey') {
          // ssh2 names every RSA key ssh-rsa; hashAlgo says rsa-sha2-256/512, none means SHA-1.
          const signature = ctx.key.algo === 'ssh-rsa' && ctx.hashAlgo ? `rsa-sha2-${ctx.hashAlgo.slice(3)}` : ctx.key.algo;
          metrics.sshUserAuthSignatures.inc({ algorithm: signature });
          posture?.recordUserAuth(signature, ident);
        }
      });
    });
    client.on('ready', () => {
      if (!identity) return client.end();
      if (socket) this.authenticated.add(socket);
      if (negotiated) posture?.recordHandshake(negotiated, ident);
      const who = identity;
      // Before authentication ssh2's 35000-byte packet cap stands; now an exec request
      // up to limits.maxCommandBytes must fit, so session.ts can refuse longer ones (75).
      patched.setMaxPacketSize(
        config.limits.maxCommandBytes + EXEC_REQUEST_OVERHEAD,
        `a command line may have at most limits.maxCommandBytes = ${config.limits.maxCommandBytes} bytes`,
      );
      log.info({ client: clientLabel, user: who.username, account: who.runAs.account.name, fingerprint: who.keyFingerprint }, 'authenticated');
      metrics.sshConnections.inc({ result: 'authenticated' });
      armIdle();
      let channels = 0;
      client.on('session', (accept, reject) => {
        if (channels >= config.limits.maxChannelsPerConnection) {
          log.warn({ client: clientLabel, limit: config.limits.maxChannelsPerConnection }, 'session channel refused: limits.maxChannelsPerConnection reached');
          metrics.commandsRefused.inc({ reason: 'max-channels' });
          return reject();
        }
        channels++;
        const session = accept();
        session.on('error', () => {});
        metrics.sshSessions.inc();
        session.once('close', () => {
          channels--;
          metrics.sshSessions.dec();
        });
        new SessionHandler(session, services, {
          clientAddress: peer.address,
          clientPort: peer.port,
          serverAddress: socket?.localAddress ?? '',
          serverPort: socket?.localPort ?? 0,
          identity: who,
          activity,
        });
      });
    });
  }

  /** Adds a listener; may be called for several addresses (node address, VIP). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const tcp = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.onSocket(socket));
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
      return typeof addr === 'object' && addr !== null && unmapped(addr.address) === unmapped(host);
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
    return [...this.sockets].map((socket) => {
      const peer = this.peers.get(socket);
      const client = peer ? `${peer.address}:${peer.port}` : `${unmapped(socket.remoteAddress ?? 'unknown')}:${socket.remotePort ?? 0}`;
      return { client, via: `${unmapped(socket.localAddress ?? 'unknown')}:${socket.localPort ?? 0}`, forwardedTo: this.forwardedTo.get(socket) ?? null };
    });
  }

  destroyConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
