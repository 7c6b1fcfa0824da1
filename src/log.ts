import { pino, type Logger } from 'pino';

export type { Logger };

/** Operational log: one JSON line per event on stdout (journald-friendly). */
export function createLogger(level: string, node: string): Logger {
  return pino({ level, base: { node }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** For a module that runs before (or without) the gateway's logger: the same format, named by component. */
export function componentLogger(component: string, level = 'info'): Logger {
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime });
}
