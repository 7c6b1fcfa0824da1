import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Server } from 'node:net';

/**
 * Holds new TCP connections to one listening socket in the kernel: a classic BPF
 * socket filter on the listener drops every segment with SYN set and ACK clear, so a
 * new connection's SYN gets no answer (no RST, no SYN-ACK) and the client's TCP sends
 * it again after 1, 3, 7, 15, 31 s... Everything else passes: a handshake already
 * half done completes (its last ACK reaches the listener too), and connections accepted
 * before keep working (they were cloned from the listener before the filter).
 *
 * Why: a drained leader must let the VIP move without resetting a connection, and the
 * VIP can move only once no connection that came in on it is open. Refusing new ones
 * (or accepting and relaying them) keeps that moment from coming under a steady stream
 * of jobs; a held SYN waits and then reaches whichever node holds the VIP.
 *
 * Node.js has no setsockopt(), so a short python3 program does it on the listener's
 * file descriptor, passed to it as fd 3. SO_ATTACH_FILTER with classic BPF needs no
 * capability.
 */
const PROGRAM = `
import ctypes, socket, struct, sys
SO_ATTACH_FILTER, SO_DETACH_FILTER = 26, 27
s = socket.socket(fileno=3)
try:
    if sys.argv[1] == "hold":
        # The filter sees the segment from its TCP header on; byte 13 holds the flags.
        code = [
            (0x30, 0, 0, 13),          # ldb [13]
            (0x54, 0, 0, 0x12),        # and #(SYN|ACK)
            (0x15, 0, 1, 0x02),        # jeq #SYN: next, else skip one
            (0x06, 0, 0, 0),           # ret #0: drop
            (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep all of it
        ]
        prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in code))
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(code), ctypes.addressof(prog)))
    else:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        except OSError as e:
            if e.errno != 2:  # ENOENT: no filter attached
                raise
finally:
    s.detach()
`;

const HELPER_TIMEOUT_MS = 5000;
/** Debian's python3 by absolute path: PATH may lead to a slow wrapper (pyenv's shim takes 0.4 s). */
const DEFAULT_PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export class SynHoldError extends Error {}

function listenerFd(server: Server): number {
  // The listener's descriptor (net.Server keeps it in its libuv handle on Unix).
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new SynHoldError('the listener has no file descriptor (closed?)');
  return fd;
}

/** Holds (true) or admits again (false) new connections to `server`; rejects with the reason it could not. */
export function setSynHold(server: Server, hold: boolean, python = DEFAULT_PYTHON): Promise<void> {
  let fd: number;
  try {
    fd = listenerFd(server);
  } catch (err) {
    return Promise.reject(err as Error);
  }
  return new Promise((resolve, reject) => {
    // As root, so like every root helper: a fixed environment, isolated mode (-I: no PYTHON* variables, no user site).
    const child = spawn(python, ['-I', '-c', PROGRAM, hold ? 'hold' : 'admit'], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new SynHoldError(`cannot run ${python}: ${err.message} (install python3 to hold connections during a VIP drain)`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new SynHoldError(`${python} could not ${hold ? 'attach' : 'detach'} the socket filter (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').at(-1) ?? ''}`));
    });
  });
}
