import { isIPv4 } from 'node:net';

/** "::ffff:192.0.2.1" (an IPv4 peer on a dual-stack socket) -> "192.0.2.1"; anything else unchanged. */
export function unmapIPv4(address: string): string {
  const tail = address.slice(7);
  return address.toLowerCase().startsWith('::ffff:') && isIPv4(tail) ? tail : address;
}
