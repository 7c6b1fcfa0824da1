import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { unmapIPv4 } from '../address.js';

/** Decodes /proc/net/tcp{,6}'s "0100007F:1F90": 32-bit words in host (little-endian) byte order. */
export function decodeProcAddress(field: string): { address: string; port: number } | null {
  const [hex, portHex] = field.split(':');
  if (!hex || !portHex || (hex.length !== 8 && hex.length !== 32)) return null;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(hex.slice(w + b, w + b + 2), 16));
  }
  const port = parseInt(portHex, 16);
  if (bytes.length === 4) return { address: bytes.join('.'), port };
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return { address: bytes.slice(12).join('.'), port };
  if (bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1) return { address: '::1', port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return { address: groups.join(':'), port };
}

/**
 * The uid owning the other end of a TCP connection on this host, from the kernel's
 * socket table (/proc/net/tcp and tcp6: the entry whose local end is the peer's address
 * and whose remote end is ours). null when it cannot be found (not Linux, or the peer
 * already closed).
 */
export async function peerUid(socket: Pick<Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>): Promise<number | null> {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || !remotePort || !localAddress || !localPort) return null;
  const peer = unmapIPv4(remoteAddress);
  const self = unmapIPv4(localAddress);
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 8 || f[3] === '0A') continue; // 0A: LISTEN
      const local = decodeProcAddress(f[1]!);
      const rem = decodeProcAddress(f[2]!);
      if (!local || !rem || local.port !== remotePort || rem.port !== localPort) continue;
      if (local.address !== peer || rem.address !== self) continue;
      const uid = Number(f[7]);
      if (Number.isInteger(uid)) return uid;
    }
  }
  return null;
}
