import type { Socket } from 'node:net';
import { VERSION } from '../version.js';

/** SSH_MSG_DISCONNECT reason codes (RFC 4253 11.1). */
export const DISCONNECT_PROTOCOL_ERROR = 2;
export const DISCONNECT_SERVICE_NOT_AVAILABLE = 7;
export const DISCONNECT_BY_APPLICATION = 11;
export const DISCONNECT_TOO_MANY_CONNECTIONS = 12;
export const DISCONNECT_NO_MORE_AUTH_METHODS = 14;

/**
 * Refuses a connection the SSH way, before key exchange: our version line, then an
 * unencrypted SSH_MSG_DISCONNECT whose description clients print (OpenSSH: "Received
 * disconnect from ...: 12: <reason>"). ssh2 cannot send a description, and plain text
 * before the version line is hidden by OpenSSH unless it runs with -v.
 */
export function disconnectBeforeKex(socket: Socket, reasonCode: number, description: string): void {
  const text = Buffer.from(description, 'utf8');
  const payload = Buffer.alloc(1 + 4 + 4 + text.length + 4);
  let p = 0;
  payload[p++] = 1; // SSH_MSG_DISCONNECT
  payload.writeUInt32BE(reasonCode, p);
  p += 4;
  payload.writeUInt32BE(text.length, p);
  p += 4;
  text.copy(payload, p);
  p += text.length;
  payload.writeUInt32BE(0, p); // language tag ""
  // packet_length(4) + padding_length(1) + payload + padding: a multiple of 8, padding >= 4
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  const packet = Buffer.alloc(5 + payload.length + padding);
  packet.writeUInt32BE(1 + payload.length + padding, 0);
  packet[4] = padding;
  payload.copy(packet, 5);
  socket.end(Buffer.concat([Buffer.from(`SSH-2.0-execgate_${VERSION}\r\n`), packet]));
  setTimeout(() => socket.destroy(), 2000).unref();
}
