import { isIPv4, isIPv6, type Socket } from 'node:net';
import { unmapIPv4 } from '../address.js';

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
  if (family === 0x11 && len < 12) throw new Error(`PROXY v2 address block of ${len} bytes is too short for TCP over IPv4 (12)`);
  if (family === 0x21 && len < 36) throw new Error(`PROXY v2 address block of ${len} bytes is too short for TCP over IPv6 (36)`);
  if (family === 0x11) {
    return { info: { address: [...block.subarray(0, 4)].join('.'), port: block.readUInt16BE(8) }, length: total };
  }
  if (family === 0x21) {
    const words = Array.from({ length: 8 }, (_, i) => block.readUInt16BE(i * 2).toString(16));
    return { info: { address: words.join(':'), port: block.readUInt16BE(32) }, length: total };
  }
  if (family === 0x00) return { info: { address: null, port: null }, length: total };
  throw new Error(`unsupported PROXY v2 address family 0x${family.toString(16)}`);
}

export interface ProxyEndpoint {
  address: string;
  port: number;
}

const PROXY_COMMAND = 0x21; // version 2, PROXY
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;

/** The IPv4 address, also when it arrived mapped into IPv6; null for a real IPv6 address. */
function plainIPv4(address: string): string | null {
  const a = unmapIPv4(address);
  return isIPv4(a) ? a : null;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** The 16 bytes of an IPv6 address in any textual form ("::", embedded IPv4, zone-less). */
function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address)) throw new Error(`"${address}" is not an IPv6 address`);
  const out = Buffer.alloc(16);
  let text = address;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (isIPv4(text.slice(lastColon + 1))) {
    const v4 = ipv4Bytes(text.slice(lastColon + 1));
    tail.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
    text = text.slice(0, lastColon + 1) + '0'; // a placeholder group, replaced below
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, null];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const front = groups(head);
  const back = rest === null ? [] : groups(rest);
  if (tail.length) (back.length ? back : front).pop();
  const words = rest === null ? [...front, ...tail] : [...front, ...Array<number>(8 - front.length - back.length - tail.length).fill(0), ...back, ...tail];
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/**
 * A PROXY protocol v2 header (PROXY command, TCP) carrying a connection's real client
 * (source) and the address it connected to (destination). Both IPv4 (IPv4-mapped IPv6
 * counts) gives TCP over IPv4; otherwise both are sent as IPv6, an IPv4 one mapped.
 */
export function encodeProxyV2(endpoints: { source: ProxyEndpoint; destination: ProxyEndpoint }): Buffer {
  const { source, destination } = endpoints;
  for (const [name, e] of [
    ['source', source],
    ['destination', destination],
  ] as const) {
    if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) throw new Error(`PROXY v2 ${name} port ${e.port} is not a TCP port (0-65535)`);
    if (!isIPv4(e.address) && !isIPv6(e.address)) throw new Error(`PROXY v2 ${name} address "${e.address}" is not an IPv4 or IPv6 address`);
  }
  const src4 = plainIPv4(source.address);
  const dst4 = plainIPv4(destination.address);
  const ipv4 = src4 !== null && dst4 !== null;
  const addressBytes = ipv4 ? 4 : 16;
  const asBytes = (address: string, v4: string | null) => (ipv4 ? ipv4Bytes(v4!) : v4 !== null ? ipv6Bytes(`::ffff:${v4}`) : ipv6Bytes(address));
  const header = Buffer.alloc(HEADER_BYTES + addressBytes * 2 + 4);
  SIGNATURE.copy(header, 0);
  header[12] = PROXY_COMMAND;
  header[13] = ipv4 ? TCP_OVER_IPV4 : TCP_OVER_IPV6;
  header.writeUInt16BE(header.length - HEADER_BYTES, 14);
  asBytes(source.address, src4).copy(header, HEADER_BYTES);
  asBytes(destination.address, dst4).copy(header, HEADER_BYTES + addressBytes);
  header.writeUInt16BE(source.port, HEADER_BYTES + addressBytes * 2);
  header.writeUInt16BE(destination.port, HEADER_BYTES + addressBytes * 2 + 2);
  return header;
}

/**
 * Reads the PROXY v2 header a load balancer sends before SSH, and puts back any
 * bytes after it so ssh2 sees the stream from the client's first SSH byte.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedAddress> {
  return readHeader(socket, timeoutMs, false) as Promise<ProxiedAddress>;
}

/**
 * For peers whose header is optional (cluster nodes forwarding during a drain, which
 * also connect directly): a connection that starts with the v2 signature must carry a
 * valid header; one that starts with "SSH-", or sends nothing for `directAfterMs` (a
 * client that waits for the server's version line first), is direct: null.
 */
export function readOptionalProxyHeader(socket: Socket, timeoutMs: number, directAfterMs: number): Promise<ProxiedAddress | null> {
  return readHeader(socket, timeoutMs, true, directAfterMs);
}

function readHeader(socket: Socket, timeoutMs: number, optional: boolean, directAfterMs = 0): Promise<ProxiedAddress | null> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no PROXY v2 header within ${timeoutMs} ms`)), timeoutMs);
    const silence = optional ? setTimeout(() => buf.length === 0 && finish(null, null), directAfterMs) : null;
    const finish = (err: Error | null, info?: ProxiedAddress | null, rest?: Buffer) => {
      clearTimeout(timer);
      if (silence) clearTimeout(silence);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length) socket.unshift(rest);
      resolve(info ?? null);
    };
    const onClose = () => finish(new Error('closed before the PROXY header'));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // The signature's first byte is CR; an SSH version line starts with "S".
      if (optional && buf[0] !== SIGNATURE[0]) return finish(null, null, buf);
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
