import type { Connection } from 'ssh2';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AuthenticatedIdentity, PublicKeyAuthenticator } from './auth.js';
import type { AlgorithmPosture } from './algorithmPosture.js';
import type { PeerAddress } from './connectionTracker.js';
import { DISCONNECT_NO_MORE_AUTH_METHODS } from './earlyDisconnect.js';
import type { PatchedConnection } from './ssh2Internals.js';

/** Longer than any account name (Linux: 32 bytes); sshd reads the whole packet, we refuse early. */
const MAX_USERNAME_BYTES = 256;

export interface AuthAttemptsOptions {
  authenticator: PublicKeyAuthenticator;
  peer: PeerAddress;
  clientLabel: string;
  maxAuthTries: number;
  log: Logger;
  metrics: Metrics;
  posture?: AlgorithmPosture;
  /** The client's identification string (for the posture record). */
  ident: string;
  /** Runs before ssh2's "ready" (see PublicKeyAuthenticator.handle). */
  onAuthenticated: (identity: AuthenticatedIdentity) => void;
}

/**
 * Passes a connection's authentication requests to the authenticator, within sshd's
 * MaxAuthTries (failures per connection, the first "none" probe excepted) and a
 * username length bound; past either, the client is told why and disconnected.
 */
export function handleAuthAttempts(client: Connection, patched: PatchedConnection, options: AuthAttemptsOptions): void {
  const { log, metrics, maxAuthTries, clientLabel, peer, posture, ident } = options;
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
    options.authenticator.handle(ctx, { address: peer.address, label: clientLabel }, (who) => {
      options.onAuthenticated(who);
      if (ctx.method === 'publickey') {
        // ssh2 names every RSA key ssh-rsa; hashAlgo says rsa-sha2-256/512, none means SHA-1.
        const signature = ctx.key.algo === 'ssh-rsa' && ctx.hashAlgo ? `rsa-sha2-${ctx.hashAlgo.slice(3)}` : ctx.key.algo;
        metrics.sshUserAuthSignatures.inc({ algorithm: signature });
        posture?.recordUserAuth(signature, ident);
      }
    });
  });
}
