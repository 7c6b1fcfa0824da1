import { pino, type Logger } from 'pino';

export type { Logger };

/** Operational log: one JSON line per event on stdout (journald-friendly). */
export function createLogger(level: string, node: string): Logger {
  return pino({ level, base: { node }, timestamp: pino.stdTimeFunctions.isoTime });
}
