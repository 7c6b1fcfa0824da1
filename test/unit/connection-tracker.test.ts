import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { ConnectionTracker } from '../../src/ssh/connectionTracker.js';

const log = createLogger('silent', 'test');

/** Just what the tracker reads of a socket: its addresses, 'close' and destroy(). */
function fakeSocket(local: string, remote = '198.18.0.7', remotePort = 40000): Socket {
  const socket = Object.assign(new EventEmitter(), {
    localAddress: local,
    localPort: 22,
    remoteAddress: remote,
    remotePort,
    destroyed: false,
    destroy() {
      if (socket.destroyed) return;
      socket.destroyed = true;
      socket.emit('close');
    },
  });
  return socket as unknown as Socket;
}

describe('ConnectionTracker', () => {
  it('counts open sockets per local address (IPv4-mapped or not) and tells listeners of every change', () => {
    const tracker = new ConnectionTracker(log);
    const counts: number[] = [];
    const unsubscribe = tracker.onOpenViaChange('::ffff:10.0.0.100', (n) => counts.push(n));
    const a = fakeSocket('::ffff:10.0.0.100');
    const b = fakeSocket('10.0.0.100');
    const other = fakeSocket('10.0.0.1');
    tracker.add(a);
    tracker.add(b);
    tracker.add(other);
    expect(tracker.size).toBe(3);
    expect(tracker.openVia('10.0.0.100')).toBe(2);
    expect(tracker.openVia('10.0.0.1')).toBe(1);
    a.destroy();
    unsubscribe();
    b.destroy();
    expect(counts).toEqual([1, 2, 1]);
    expect(tracker.openVia('10.0.0.100')).toBe(0);
    expect(tracker.size).toBe(1);
  });

  it('keeps counting when a listener throws', () => {
    const tracker = new ConnectionTracker(log);
    tracker.onOpenViaChange('10.0.0.100', () => {
      throw new Error('boom');
    });
    tracker.add(fakeSocket('10.0.0.100'));
    expect(tracker.openVia('10.0.0.100')).toBe(1);
  });

  it('reports a connection undecided until a command is decided, it is forwarded or it closes', () => {
    const tracker = new ConnectionTracker(log);
    const decided = fakeSocket('10.0.0.1');
    const forwarded = fakeSocket('10.0.0.1');
    const closed = fakeSocket('10.0.0.1');
    for (const s of [decided, forwarded, closed]) tracker.add(s);
    const later = Date.now() + 1;
    expect(tracker.undecidedBefore(later)).toBe(true);
    expect(tracker.undecidedBefore(0)).toBe(false);
    tracker.markDecided(decided);
    tracker.markForwarded(forwarded, 'gw2');
    expect(tracker.undecidedBefore(later)).toBe(true);
    closed.destroy();
    expect(tracker.undecidedBefore(later)).toBe(false);
  });

  it('describes each connection by its real client, where it came in and where it is relayed', () => {
    const tracker = new ConnectionTracker(log);
    const direct = fakeSocket('::ffff:10.0.0.1', '::ffff:198.18.0.7', 40001);
    const proxied = fakeSocket('10.0.0.100', '10.0.0.2', 50000);
    tracker.add(direct);
    tracker.add(proxied);
    tracker.setPeer(proxied, { address: '198.18.0.9', port: 41000 });
    tracker.markForwarded(proxied, 'gw2');
    const relayClosed = tracker.relayOpened();
    expect(tracker.forwardedCount).toBe(1);
    expect(tracker.isForwarded(proxied)).toBe(true);
    expect(tracker.describe()).toEqual([
      { client: '198.18.0.7:40001', via: '10.0.0.1:22', forwardedTo: null },
      { client: '198.18.0.9:41000', via: '10.0.0.100:22', forwardedTo: 'gw2' },
    ]);
    relayClosed();
    expect(tracker.forwardedCount).toBe(0);
    tracker.destroyAll();
    expect(tracker.size).toBe(0);
  });
});
