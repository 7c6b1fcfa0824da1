import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { ConnectionTracker } from './connectionTracker.js';
import { DISCONNECT_BY_APPLICATION } from './earlyDisconnect.js';

/**
 * sshd's LoginGraceTime: from accept, covering the PROXY header, the version line,
 * key exchange and authentication. A socket that sends nothing is closed too.
 * Authenticated and forwarded sockets are exempt (a forwarded one's target has its own).
 */
export function armLoginGrace(socket: Socket, tracker: ConnectionTracker, loginGraceSeconds: number, log: Logger): void {
  const loginTimer = setTimeout(() => {
    if (tracker.isAuthenticated(socket) || tracker.isForwarded(socket) || socket.destroyed) return;
    log.warn({ client: tracker.clientLabel(socket), seconds: loginGraceSeconds }, 'login grace time (limits.loginGraceSeconds) exceeded; disconnecting');
    const connection = tracker.connectionOn(socket);
    if (connection) connection.disconnect(DISCONNECT_BY_APPLICATION, `execgate: no authentication within limits.loginGraceSeconds = ${loginGraceSeconds} s`);
    // end() alone leaves a silent peer's socket (and its slot) open until the peer closes
    socket.destroySoon();
    setTimeout(() => socket.destroy(), 1000).unref();
  }, loginGraceSeconds * 1000);
  loginTimer.unref();
  socket.once('close', () => clearTimeout(loginTimer));
}
