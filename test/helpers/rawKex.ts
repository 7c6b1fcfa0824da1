import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * A hand-made SSH client that speaks only the cleartext start of the transport (RFC
 * 4253: version line, binary packets without encryption, KEXINIT), so a test can
 * send a key exchange message with exactly the bytes it wants.
 */
export interface RawPacket {
  type: number;
  payload: Buffer;
}

export interface RawKexResult {
  serverIdent: string;
  packets: RawPacket[];
  /** The DISCONNECT the server sent, if any. */
  disconnect: { reason: number; description: string } | null;
  closed: boolean;
}

const MSG_DISCONNECT = 1;
const MSG_KEXINIT = 20;

function string(value: Buffer | string): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value) : value;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** One cleartext binary packet: length, padding length, payload, padding to 8 bytes. */
export function cleartextPacket(payload: Buffer): Buffer {
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  const header = Buffer.alloc(5);
  header.writeUInt32BE(1 + payload.length + padding);
  header[4] = padding;
  return Buffer.concat([header, payload, randomBytes(padding)]);
}

export function kexinitPayload(kex: string[]): Buffer {
  const lists = [[...kex, 'kex-strict-c-v00@openssh.com'], ['ssh-ed25519', 'rsa-sha2-256'], ['aes128-ctr'], ['aes128-ctr'], ['hmac-sha2-256'], ['hmac-sha2-256'], ['none'], ['none'], [], []];
  return Buffer.concat([
    Buffer.from([MSG_KEXINIT]),
    randomBytes(16),
    ...lists.map((l) => string(l.join(','))),
    Buffer.from([0, 0, 0, 0, 0]), // first_kex_packet_follows = false, reserved uint32
  ]);
}

/** SSH_MSG_KEX_ECDH_INIT / SSH_MSG_KEX_HYBRID_INIT (30) carrying `share` as a string. */
export function kexInitMessage(share: Buffer): Buffer {
  return Buffer.concat([Buffer.from([30]), string(share)]);
}

/**
 * Connects, exchanges version lines and KEXINITs (offering only `kex`), sends each of
 * `messages` as a cleartext packet, and collects what the server sends until it
 * closes the connection or `timeoutMs` passes.
 */
export function rawKex(port: number, kex: string[], messages: Buffer[], timeoutMs = 5000): Promise<RawKexResult> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buffer = Buffer.alloc(0);
    let serverIdent: string | null = null;
    let sentOurs = false;
    const packets: RawPacket[] = [];
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const d = packets.find((p) => p.type === MSG_DISCONNECT);
      let disconnect = null;
      if (d) {
        const reason = d.payload.readUInt32BE(1);
        const len = d.payload.readUInt32BE(5);
        disconnect = { reason, description: d.payload.subarray(9, 9 + len).toString() };
      }
      resolve({ serverIdent: serverIdent ?? '', packets, disconnect, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (serverIdent === null) reject(err);
      else finish(true);
    });
    socket.on('close', () => finish(true));
    socket.on('connect', () => socket.write('SSH-2.0-execgate_rawkex_test\r\n'));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (serverIdent === null) {
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        serverIdent = buffer.subarray(0, eol).toString();
        buffer = buffer.subarray(eol + 2);
      }
      while (buffer.length >= 5) {
        const length = buffer.readUInt32BE(0);
        if (buffer.length < 4 + length) break;
        const padding = buffer[4]!;
        const payload = buffer.subarray(5, 4 + length - padding);
        buffer = buffer.subarray(4 + length);
        packets.push({ type: payload[0]!, payload: Buffer.from(payload) });
        if (payload[0] === MSG_KEXINIT && !sentOurs) {
          sentOurs = true;
          socket.write(Buffer.concat([cleartextPacket(kexinitPayload(kex)), ...messages.map(cleartextPacket)]));
        }
      }
    });
  });
}
