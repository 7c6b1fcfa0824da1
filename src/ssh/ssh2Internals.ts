import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Connection, ServerChannel, ServerConfig } from 'ssh2';

/**
 * Everything execgate reads or writes inside ssh2 beyond its typed API: private fields and modules,
 * the methods patches/ssh2+*.patch adds, and the socket ssh2 writes to. An ssh2 upgrade
 * is checked here, against the markers in ssh2Patch.ts, and in kex/register.ts (which
 * plugs the post-quantum key exchange into ssh2's kex module).
 */

/** The server options the typings lack (read by patches/ssh2+*.patch). */
export interface PatchedServerConfig extends ServerConfig {
  /** The EXT_INFO server-sig-algs list. */
  serverSigAlgs: string[];
}

/** The parts of ssh2's server-side Connection that the typings lack (added by patches/ssh2+*.patch). */
export interface PatchedConnection {
  disconnect(reason: number, description: string): void;
  setMaxPacketSize(bytes: number, hint?: string): void;
}

export function patchedConnection(client: Connection): PatchedConnection {
  return client as unknown as PatchedConnection;
}

/** The TCP socket under an ssh2 server connection (the one injectSocket was given). */
export function socketOf(client: Connection): Socket | undefined {
  return (client as unknown as { _sock?: Socket })._sock;
}

/** False once our side of the channel has sent CLOSE (or never opened). */
export function channelIsOpen(channel: ServerChannel): boolean {
  return (channel as unknown as { outgoing: { state: string } }).outgoing.state === 'open';
}

/**
 * ssh2 writes every packet (at most 32 KiB with OpenSSH) with its own socket.write:
 * one syscall each. Corking until the check phase of the current event-loop turn
 * sends everything this turn produced in one writev: a bulk stream's many pipe reads
 * per turn (64 KiB each, two packets) go out together. A lone packet still leaves in
 * the same turn (TCP_NODELAY stays on). Uncorking at the end of each tick instead
 * cost ~4x the syscalls (strace, 256 MiB of stdout: 38,900 against 10,500).
 */
export function coalesceWrites(socket: Socket): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return write(...args);
  }) as typeof socket.write;
}

const ssh2Require = createRequire(import.meta.url);

/** ssh2's own lists of what this build (OpenSSL, the optional native binding) supports. */
export function ssh2SupportedAlgorithms(): { kex: string[]; hostKey: string[]; cipher: string[]; mac: string[] } {
  const c = ssh2Require('ssh2/lib/protocol/constants.js') as Record<string, string[]>;
  return { kex: c.SUPPORTED_KEX!, hostKey: c.SUPPORTED_SERVER_HOST_KEY!, cipher: c.SUPPORTED_CIPHER!, mac: c.SUPPORTED_MAC! };
}

/** Whether ssh2 loaded its native crypto binding (it falls back to JavaScript silently when not). */
export function ssh2CryptoBindingLoaded(): boolean {
  return (ssh2Require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean }).bindingAvailable;
}
