import type { ServerChannel } from 'ssh2';
import { channelIsOpen } from './ssh2Internals.js';

function closedPromise(channel: ServerChannel): Promise<void> {
  return new Promise((resolve) => channel.once('close', () => resolve()));
}

function flushed(stream: NodeJS.WritableStream): Promise<void> {
  // An empty write completes only after every queued chunk went out (ssh2 window included).
  return new Promise((resolve) => stream.write(Buffer.alloc(0), () => resolve()));
}

/**
 * Ends a session channel the way JSch and sshj need it: all output flushed, then
 * exit-status, then EOF and CLOSE. ssh2 would send exit-status ahead of queued output.
 */
export async function endChannel(channel: ServerChannel, status: number, closed = closedPromise(channel)): Promise<void> {
  if (!channelIsOpen(channel)) return;
  await Promise.race([Promise.all([flushed(channel), flushed(channel.stderr)]), closed]);
  if (!channelIsOpen(channel)) return;
  channel.exit(status);
  channel.end();
}

/** Writes one line to the client's stderr and ends the channel with the given status. */
export async function refuseOnChannel(channel: ServerChannel, message: string, status: number): Promise<void> {
  if (channelIsOpen(channel)) channel.stderr.write(message.endsWith('\n') ? message : message + '\n');
  await endChannel(channel, status);
}

/** Writes one line to the client's stdout (a run-once answer) and ends the channel with the given status. */
export async function writeLineAndEnd(channel: ServerChannel, line: string, status: number): Promise<void> {
  if (channelIsOpen(channel)) channel.write(line + '\n');
  await endChannel(channel, status);
}
