import { connect, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import { disconnectBeforeKex, DISCONNECT_SERVICE_NOT_AVAILABLE } from './earlyDisconnect.js';

export interface ForwardTarget {
  host: string;
  port: number;
  /** The node there (for the refusal a client sees when it cannot be reached). */
  name?: string;
  /** The source address to connect from (one the target trusts as a peer); default: the route's. */
  localAddress?: string;
}

export interface ForwardOptions {
  connectTimeoutMs: number;
  log: Logger;
  /** This node's name, for the refusal message. */
  node?: string;
}

export interface ForwardResult {
  /** Client bytes delivered to the target (the PROXY header not counted). */
  bytesUp: number;
  /** Target bytes read for the client. */
  bytesDown: number;
  /** False when the target could not be reached (the client got an SSH refusal). */
  connected: boolean;
  error?: Error;
}

/**
 * Relays a client's TCP connection to `target`, `header` (a PROXY v2 header) first.
 * Both directions are piped (pipe() pauses the faster side), a FIN in one direction
 * is passed on as a FIN while the other keeps flowing, and an error or reset on either
 * side destroys both. Resolves once both sockets are closed, on every path.
 * The client socket must be paused with nothing read from it beyond what was unshifted.
 */
export function forwardConnection(client: Socket, target: ForwardTarget, header: Buffer, opts: ForwardOptions): Promise<ForwardResult> {
  if (client.destroyed) return Promise.resolve({ bytesUp: 0, bytesDown: 0, connected: false, error: new Error('the client closed before forwarding began') });
  return new Promise((resolve) => {
    let connected = false;
    let error: Error | undefined;
    // The client's FIN must not end our side too: the target may still be sending.
    client.allowHalfOpen = true;
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true, ...(target.localAddress ? { localAddress: target.localAddress } : {}) });
    const where = `${target.host}:${target.port}`;

    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      clearTimeout(connectTimer);
      resolve({ bytesUp: Math.max(0, upstream.bytesWritten - (connected ? header.length : 0)), bytesDown: upstream.bytesRead, connected, ...(error ? { error } : {}) });
    };
    client.once('close', closed);
    upstream.once('close', closed);

    const fail = (err: Error) => {
      error ??= err;
      if (connected) {
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.destroy();
      if (client.destroyed) return;
      const description = `execgate: ${opts.node ?? 'this node'} is draining and could not reach the leader ${target.name ?? where} at ${where}: ${err.message}; retry`;
      opts.log.warn({ target: where, leader: target.name, err: err.message }, `forwarding refused: could not reach the leader ${target.name ?? where} at ${where}`);
      client.resume(); // read and drop the client's version line, so our close is a FIN, not a reset
      disconnectBeforeKex(client, DISCONNECT_SERVICE_NOT_AVAILABLE, description);
    };

    const connectTimer = setTimeout(() => fail(new Error(`no connection within ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
    connectTimer.unref();
    upstream.on('error', fail);
    client.on('error', fail);
    // One side gone entirely (closed, or destroyed by a shutdown): what it sent is flushed
    // to the other, which then goes too. Before the connection, a client that leaves
    // takes the attempt with it (an unreachable target is fail()'s to answer).
    const after = (gone: Socket, other: Socket) =>
      gone.once('close', () => {
        if (other.destroyed) return;
        if (!connected) return gone === client ? other.destroy() : undefined;
        other.once('finish', () => other.destroy());
        other.end();
      });
    after(client, upstream);
    after(upstream, client);

    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      if (client.destroyed) return upstream.destroy();
      connected = true;
      upstream.setKeepAlive(true, 15_000);
      upstream.write(header);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
}
