/**
 * The cluster's token (gateway.http.tokenFile, the same file on every node): what the HTTP
 * surface requires for admin calls and command lines, and what gateways send each other
 * on every peer request (dispatch-script copies, the vrrp peer poll, doctor's checks).
 * Here, below both http/ and cluster/, so neither imports the other for it.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { errors } from '../errors.js';
import type { Config } from './schema.js';

/** A token is one word of at least this many characters. */
export const MIN_TOKEN_LENGTH = 16;
/** Larger files are not token files (a mistaken path to a log or a key). */
const MAX_TOKEN_FILE_BYTES = 4096;

/** The one-line token a file holds, or why it holds none. */
export function parseTokenText(text: string): string | null {
  const t = text.trim();
  return /^[\x21-\x7e]+$/.test(t) && t.length >= MIN_TOKEN_LENGTH ? t : null;
}

/**
 * Reads the server's token file like sshd reads a host key: a regular file, owned by
 * root or the account execgate runs as, mode 0600 or stricter (refused otherwise, with
 * the chmod that fixes it), holding one token of at least 16 printable characters.
 */
export function readServerTokenFile(path: string, key = 'http.tokenFile'): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw errors.tokenFileUnreadable(key, path, err as NodeJS.ErrnoException);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw errors.tokenFileNotRegular(key, path);
    if ((st.mode & 0o077) !== 0) throw errors.tokenFileTooOpen(key, path, st.mode);
    const self = process.geteuid?.() ?? 0;
    if (st.uid !== 0 && st.uid !== self) throw errors.tokenFileForeignOwner(key, path, st.uid, self);
    if (st.size > MAX_TOKEN_FILE_BYTES) throw errors.tokenFileTooLarge(key, path, st.size);
    const buf = Buffer.alloc(MAX_TOKEN_FILE_BYTES);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const token = parseTokenText(buf.subarray(0, n).toString('utf8'));
    if (token === null) throw errors.tokenFileNoToken(key, path, MIN_TOKEN_LENGTH);
    return token;
  } finally {
    closeSync(fd);
  }
}

/** The bearer token this node requires, from http.token or http.tokenFile; undefined when neither is set. */
export function resolveServerToken(http: Pick<Config['http'], 'token' | 'tokenFile'>): string | undefined {
  if (http.tokenFile !== undefined) return readServerTokenFile(http.tokenFile);
  return http.token;
}
