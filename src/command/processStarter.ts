import { RunningCommand } from '../exec/runner.js';
import { PtyCommand } from '../exec/ptyRunner.js';
import type { CommandStarter } from './run.js';

/** Real processes: piped streams, or a pseudo-terminal when the client asked for one. */
export const processStarter: CommandStarter = {
  start: (spec, pty, streams) => (pty ? new PtyCommand(spec, pty, { stdin: streams.stdin, stdout: streams.stdout }) : new RunningCommand(spec, streams)),
};
