/** A time for logs, audit records and the status page: ISO 8601 in UTC, milliseconds included. */
export function isoTime(ms: number = Date.now()): string {
  return new Date(ms).toISOString();
}
