import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { BenchServer } from '../servers/types.js';

const { Client } = ssh2;
type Client = InstanceType<typeof Client>;

const keyCache = new Map<string, Buffer>();
const keyOf = (path: string) => {
  let k = keyCache.get(path);
  if (!k) keyCache.set(path, (k = readFileSync(path)));
  return k;
};

/** Opens one authenticated connection (in-process ssh2 client). */
export function connect(server: BenchServer, keyPath: string, timeoutMs = 60_000, kex?: string[]): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const onError = (err: Error) => {
      client.removeListener('ready', onReady);
      client.destroy();
      reject(err);
    };
    const onReady = () => {
      client.removeListener('error', onError); // late errors (resets at teardown) are not failures here
      resolve(client);
    };
    client.once('ready', onReady);
    client.once('error', onError);
    // ssh2 may emit a second error (e.g. "Connection lost before handshake" after a timeout):
    // the first one decides, later ones must not become an uncaught exception.
    client.on('error', () => {});
    client.connect({
      host: '127.0.0.1',
      port: server.port,
      username: server.user,
      privateKey: keyOf(keyPath),
      readyTimeout: timeoutMs,
      hostVerifier: () => true,
      ...(kex ? { algorithms: { kex: kex as ssh2.KexAlgorithm[] } } : {}),
    });
  });
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one command on an open connection; collects (small) output. */
export function exec(client: Client, command: string, timeoutMs = 60_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`exec "${command}" timed out after ${timeoutMs} ms`)), timeoutMs);
    client.exec(command, (err, stream) => {
      if (err) {
        clearTimeout(timer);
        return reject(err);
      }
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      stream.on('data', (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      stream.on('exit', (c: number | null) => (code = c));
      stream.on('error', () => {});
      stream.once('close', () => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  });
}

/** Ends a connection and waits for the socket to close (bounded). */
export function close(client: Client, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    client.end();
  });
}

/** connect + auth + exec + close, timed end to end. */
/** `kex` limits the key exchange (mlkem768x25519-sha256 needs registerPostQuantumKex first). */
export async function ssh2Exec(server: BenchServer, keyPath: string, command: string, kex?: string[]): Promise<{ ms: number; ok: boolean; detail: string }> {
  const start = process.hrtime.bigint();
  let client: Client | null = null;
  try {
    client = await connect(server, keyPath, 30_000, kex);
    const r = await exec(client, command, 30_000);
    await close(client);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    return { ms, ok: r.code === 0, detail: r.code === 0 ? '' : `exit ${r.code}: ${r.stderr.trim()}` };
  } catch (err) {
    client?.destroy();
    return { ms: Number(process.hrtime.bigint() - start) / 1e6, ok: false, detail: (err as Error).message };
  }
}
