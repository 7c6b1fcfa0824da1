import type { Connection, NegotiatedAlgorithms } from 'ssh2';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { macName, type AlgorithmPosture } from './algorithmPosture.js';

export interface HandshakeRecorderOptions {
  metrics: Metrics;
  log: Logger;
  clientLabel: string;
  posture?: AlgorithmPosture;
  /** The client's identification string (for the posture record). */
  ident: string;
  /** True once the client has authenticated. */
  authenticated: () => boolean;
}

/**
 * Algorithm metrics for every completed key exchange (rekeys too); posture records
 * only authenticated connections (a scanner needs nothing kept on).
 */
export class HandshakeRecorder {
  private handshakes = 0;
  private negotiated: NegotiatedAlgorithms | null = null;

  constructor(
    client: Connection,
    private readonly options: HandshakeRecorderOptions,
  ) {
    client.on('handshake', (n: NegotiatedAlgorithms) => this.onHandshake(n));
  }

  /** Records the key exchange in force (at "ready": the one the client authenticated over). */
  recordNegotiated(): void {
    if (this.negotiated) this.options.posture?.recordHandshake(this.negotiated, this.options.ident);
  }

  private onHandshake(n: NegotiatedAlgorithms): void {
    const { metrics, posture, ident } = this.options;
    try {
      this.negotiated = n;
      metrics.sshHandshakes.inc({ type: this.handshakes++ === 0 ? 'initial' : 'rekey' });
      metrics.sshNegotiatedKex.inc({ algorithm: n.kex });
      metrics.sshNegotiatedHostKey.inc({ algorithm: n.serverHostKey });
      for (const c of new Set([n.cs.cipher, n.sc.cipher])) metrics.sshNegotiatedCipher.inc({ algorithm: c });
      for (const m of new Set([n.cs.mac, n.sc.mac])) metrics.sshNegotiatedMac.inc({ algorithm: macName(m) });
      for (const z of new Set([n.cs.compress, n.sc.compress])) metrics.sshNegotiatedCompression.inc({ algorithm: z });
      if (this.options.authenticated()) posture?.recordHandshake(n, ident);
    } catch (err) {
      this.options.log.warn({ client: this.options.clientLabel, err: (err as Error).message }, 'could not count the negotiated algorithms');
    }
  }
}
