import { createServer, type Server as NetServer, type Socket } from 'node:net';
import ssh2, { type Connection } from 'ssh2';
import type { HostKey } from './hostKeys.js';
import type { PublicKeyAuthenticator, AuthenticatedIdentity } from './auth.js';
import { SessionHandler, type ExecutionServices } from './session.js';
import { errors } from '../errors.js';
import { VERSION } from '../version.js';

export interface SshServerOptions {
  hostKeys: HostKey[];
  authenticator: PublicKeyAuthenticator;
  services: ExecutionServices;
}

/**
 * The SSH listener. It owns the TCP side (TCP_NODELAY, connection limit) and hands
 * each socket to ssh2 through injectSocket, so protocol plumbing stays in ssh2 and
 * policy stays here.
 */
export class SshServer {
  private readonly ssh: InstanceType<typeof ssh2.Server>;
  private readonly listeners: NetServer[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: SshServerOptions) {
    this.ssh = new ssh2.Server(
      { hostKeys: options.hostKeys.map((k) => k.pem), ident: `execgate_${VERSION}` },
      (client, info) => this.onConnection(client, info.ip ?? 'unknown', info.port ?? 0),
    );
    this.ssh.on('error', (err: Error) => options.services.log.error({ err: err.message }, 'ssh server error'));
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private onSocket(socket: Socket): void {
    const { log, config } = this.options.services;
    socket.on('error', () => {}); // ssh2 reports protocol-level errors; resets are routine
    socket.setNoDelay(true);
    if (this.sockets.size >= config.limits.maxConnections) {
      this.options.services.metrics.sshConnections.inc({ result: 'refused_limit' });
      log.warn({ client: socket.remoteAddress, limit: config.limits.maxConnections }, 'connection refused: limits.maxConnections reached');
      socket.end('execgate: too many connections (limits.maxConnections); try again later\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.ssh.injectSocket(socket);
  }

  private onConnection(client: Connection, ip: string, port: number): void {
    const { log, config, metrics } = this.options.services;
    const socket = (client as unknown as { _sock: Socket })._sock;
    const clientLabel = `${ip}:${port}`;
    let identity: AuthenticatedIdentity | null = null;

    client.on('error', (err: Error) => log.debug({ client: clientLabel, err: err.message }, 'connection error'));
    const loginTimer = setTimeout(() => {
      log.warn({ client: clientLabel, seconds: config.limits.loginGraceSeconds }, 'login grace time exceeded; disconnecting');
      client.end();
    }, config.limits.loginGraceSeconds * 1000);
    loginTimer.unref();
    client.once('close', () => {
      clearTimeout(loginTimer);
      if (!identity) metrics.sshConnections.inc({ result: 'closed_unauthenticated' });
    });

    client.on('authentication', (ctx) => {
      this.options.authenticator.handle(ctx, clientLabel, (who) => (identity = who));
    });
    client.on('ready', () => {
      clearTimeout(loginTimer);
      if (!identity) return client.end();
      const who = identity;
      log.info({ client: clientLabel, user: who.username, fingerprint: who.keyFingerprint }, 'authenticated');
      metrics.sshConnections.inc({ result: 'authenticated' });
      client.on('session', (accept) => {
        const session = accept();
        session.on('error', () => {});
        metrics.sshSessions.inc();
        session.once('close', () => metrics.sshSessions.dec());
        new SessionHandler(session, this.options.services, {
          clientAddress: ip,
          clientPort: port,
          serverAddress: socket?.localAddress ?? '',
          serverPort: socket?.localPort ?? 0,
          identity: who,
        });
      });
    });
  }

  /** Adds a listener; may be called for several addresses (node address, VIP). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const tcp = createServer({ noDelay: true }, (socket) => this.onSocket(socket));
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

  /** True while every listener accepts connections. */
  get listening(): boolean {
    return this.listeners.length > 0 && this.listeners.every((l) => l.listening);
  }

  /** Stops accepting; existing connections are left to the caller's shutdown. */
  async stopListening(): Promise<void> {
    await Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
  }

  destroyConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
