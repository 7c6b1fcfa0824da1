import type { ClientInfo, Connection } from 'ssh2';
import { unmapIPv4 } from '../address.js';
import type { PublicKeyAuthenticator, AuthenticatedIdentity } from './auth.js';
import { SessionHandler, type SessionServices } from './session.js';
import type { AlgorithmPosture } from './algorithmPosture.js';
import type { ConnectionTracker } from './connectionTracker.js';
import { patchedConnection, socketOf } from './ssh2Internals.js';
import { handleAuthAttempts } from './authAttempts.js';
import { HandshakeRecorder } from './handshakeRecorder.js';
import { IdleTimeout } from './idleTimeout.js';

/** An exec request carries the command plus channel id, request name, framing and padding. */
const EXEC_REQUEST_OVERHEAD = 64 * 1024;

export interface SshConnectionOptions {
  services: SessionServices;
  authenticator: PublicKeyAuthenticator;
  tracker: ConnectionTracker;
  posture?: AlgorithmPosture;
}

/**
 * One SSH connection once ssh2 has read its version line: error logging, algorithm
 * metrics and posture, authentication, the idle timeout, then its session channels,
 * each served by a SessionHandler.
 */
export function serveConnection(client: Connection, info: ClientInfo | undefined, options: SshConnectionOptions): void {
  const { services, tracker, posture } = options;
  const { log, config, metrics } = services;
  const socket = socketOf(client);
  const peer = (socket && tracker.peerOf(socket)) ?? { address: unmapIPv4(socket?.remoteAddress ?? 'unknown'), port: socket?.remotePort ?? 0 };
  const clientLabel = `${peer.address}:${peer.port}`;
  let identity: AuthenticatedIdentity | null = null;

  const patched = patchedConnection(client);
  if (socket) tracker.setConnection(socket, patched);
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

  const idle = new IdleTimeout(config.limits.idleTimeoutSeconds * 1000, () => {
    log.info({ client: clientLabel, seconds: config.limits.idleTimeoutSeconds }, 'idle timeout (limits.idleTimeoutSeconds); disconnecting');
    client.end();
  });
  const activity = idle.activity(() => {
    if (socket) tracker.markDecided(socket);
  });

  const ident = info?.header?.identRaw ?? '';
  const handshakes = new HandshakeRecorder(client, { metrics, log, clientLabel, posture, ident, authenticated: () => identity !== null });

  client.once('close', () => {
    idle.stop();
    if (!identity) metrics.sshConnections.inc({ result: 'closed_unauthenticated' });
  });

  handleAuthAttempts(client, patched, {
    authenticator: options.authenticator,
    peer,
    clientLabel,
    maxAuthTries: config.limits.maxAuthTries,
    log,
    metrics,
    posture,
    ident,
    onAuthenticated: (who) => {
      identity = who;
    },
  });
  client.on('ready', () => {
    if (!identity) return client.end();
    if (socket) tracker.markAuthenticated(socket);
    handshakes.recordNegotiated();
    const who = identity;
    // Before authentication ssh2's 35000-byte packet cap stands; now an exec request
    // up to limits.maxCommandBytes must fit, so the command admission (src/command/admission.ts) can refuse longer ones (75).
    patched.setMaxPacketSize(config.limits.maxCommandBytes + EXEC_REQUEST_OVERHEAD, `a command line may have at most limits.maxCommandBytes = ${config.limits.maxCommandBytes} bytes`);
    log.info({ client: clientLabel, user: who.username, account: who.runAs.account.name, fingerprint: who.keyFingerprint }, 'authenticated');
    metrics.sshConnections.inc({ result: 'authenticated' });
    idle.arm();
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
