import { resolve } from 'node:path';

/** Absolute path of a file in test/fixtures (the misbehaving commands, keys, known answers). */
export const fixture = (name: string): string => resolve(import.meta.dirname, '../fixtures', name);
