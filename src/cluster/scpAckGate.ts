import { Writable } from 'node:stream';

/** Longer "C0644 <size> <name>" lines are not an upload this gate understands. */
const MAX_HEADER_LINE = 4096;

type ClientPhase = 'header' | 'data' | 'sent' | 'unknown';

/**
 * Holds back the acknowledgement of a one-file `scp -t` upload until `beforeAck` has run.
 *
 * The scp sink answers every step with one byte, \0 for success: at start, after the
 * "C<mode> <size> <name>" line, and after the file's bytes (it has closed the file by
 * then). That last \0 is what clients take as "uploaded": JSch (Rundeck's jsch-scp)
 * drops the connection right after it, without waiting for an exit status. So the sink's
 * output goes through `writable`, the client's input is shown to `observeClient`, and once
 * the client has sent the whole file the next \0 waits for `beforeAck` (the peer copies).
 * Anything the gate does not understand (a directory, several files, an error byte)
 * passes through unchanged and never calls `beforeAck`.
 */
export class ScpAckGate {
  readonly writable: Writable;
  private phase: ClientPhase = 'header';
  private line: number[] = [];
  private remaining = 0;
  private released = false;
  private holding: Promise<void> = Promise.resolve();

  constructor(
    out: Writable,
    private readonly beforeAck: () => Promise<void>,
  ) {
    const forward = (chunk: Buffer, done: (err?: Error | null) => void) => {
      if (chunk.length === 0 || out.destroyed || out.writableEnded) return done();
      if (out.write(chunk)) done();
      else out.once('drain', () => done());
    };
    this.writable = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        if (this.released || this.phase !== 'sent' || chunk.length === 0) return forward(chunk, done);
        this.released = true;
        // The sink's first byte after the whole file: \0 (stored) or an error line (not stored).
        if (chunk[0] !== 0) return forward(chunk, done);
        this.holding = this.beforeAck()
          .catch(() => {}) // beforeAck reports its own failures; the upload succeeded here regardless
          .then(() => new Promise<void>((resolve) => forward(chunk, () => resolve())));
        void this.holding.then(() => done());
      },
    });
  }

  /** Resolves once no acknowledgement is held (the exit status must not overtake it). */
  settled(): Promise<void> {
    return this.holding;
  }

  /** Every byte the client sends to the sink, in order. */
  readonly observeClient = (chunk: Buffer): void => {
    let i = 0;
    while (i < chunk.length && (this.phase === 'header' || this.phase === 'data')) {
      if (this.phase === 'data') {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.phase = 'sent';
        continue;
      }
      const byte = chunk[i++]!;
      if (byte !== 0x0a) {
        this.line.push(byte);
        if (this.line.length > MAX_HEADER_LINE) this.phase = 'unknown';
        continue;
      }
      this.headerLine(Buffer.from(this.line).toString('latin1'));
      this.line = [];
    }
    if (this.phase === 'sent' && i < chunk.length) this.phase = 'unknown'; // more than one file
  };

  private headerLine(text: string): void {
    if (text.startsWith('T')) return; // times (scp -p), then the C line
    const m = /^C[0-7]{4} (\d{1,15}) [^/]+$/.exec(text);
    if (!m) {
      this.phase = 'unknown';
      return;
    }
    this.remaining = Number(m[1]) + 1; // the file's bytes, then the client's \0
    this.phase = 'data';
  }
}
