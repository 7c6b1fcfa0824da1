import { randomBytes } from 'node:crypto';

// The token file's reader lives in config/ (cluster/ reads it too); re-exported for http/ and the CLI.
export { MIN_TOKEN_LENGTH, parseTokenText, readServerTokenFile, resolveServerToken } from '../config/tokenFile.js';

/** A fresh token: 32 random bytes, URL-safe base64 (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}
