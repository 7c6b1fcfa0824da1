import type { Socket } from 'node:net';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const HEADER_BYTES = 16;
const MAX_ADDRESS_BLOCK = 1024;

export interface ProxiedAddress {
  /** null for a LOCAL command (the proxy's own health check): use the socket's address. */
  address: string | null;
  port: number | null;
}

export function startsWithProxyV2Signature(data: Buffer): boolean {
  return data.length >= SIGNATURE.length && data.subarray(0, SIGNATURE.length).equals(SIGNATURE);
}

/** Parses a complete PROXY v2 header; returns null while more bytes are needed. */
export function parseProxyV2(buf: Buffer): { info: ProxiedAddress; length: number } | null {
  if (buf.length < HEADER_BYTES) {
    if (!SIGNATURE.subarray(0, buf.length).equals(buf.subarray(0, SIGNATURE.length))) throw new Error('not a PROXY v2 header');
    return null;
  }
  if (!startsWithProxyV2Signature(buf)) throw new Error('not a PROXY v2 header');
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new Error(`unsupported PROXY protocol version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  const family = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (len > MAX_ADDRESS_BLOCK) throw new Error(`PROXY v2 address block of ${len} bytes is too long`);
  if (buf.length < HEADER_BYTES + len) return null;
  const block = buf.subarray(HEADER_BYTES, HEADER_BYTES + len);
  const total = HEADER_BYTES + len;
  if (command === 0x0) return { info: { address: null, port: null }, length: total };
  if (command !== 0x1) throw new Error(`unknown PROXY v2 command ${command}`);
  if (family === 0x11 && len >= 12) {
    return { info: { address: [...block.subarray(0, 4)].join('.'), port: block.readUInt16BE(8) }, length: total };
  }
  if (family === 0x21 && len >= 36) {
    const words = Array.from({ length: 8 }, (_, i) => block.readUInt16BE(i * 2).toString(16));
    return { info: { address: words.join(':'), port: block.readUInt16BE(32) }, length: total };
  }
  if (family === 0x00) return { info: { address: null, port: null }, length: total };
  throw new Error(`unsupported PROXY v2 address family 0x${family.toString(16)}`);
}

/**
 * Reads the PROXY v2 header a load balancer sends before SSH, and puts back any
 * bytes after it so ssh2 sees the stream from the client's first SSH byte.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedAddress> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no PROXY v2 header within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | null, info?: ProxiedAddress, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length) socket.unshift(rest);
      resolve(info!);
    };
    const onClose = () => finish(new Error('closed before the PROXY header'));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const parsed = parseProxyV2(buf);
        if (parsed) finish(null, parsed.info, buf.subarray(parsed.length));
      } catch (err) {
        finish(err as Error);
      }
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}
