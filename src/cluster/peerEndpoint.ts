import { Router, type Request, type Response } from 'express';
import type { Logger } from '../log.js';
import { ReplicaRefused, type ScriptReceiver } from './scriptReceiver.js';
import { PEER_FROM_HEADER, PEER_PREFIX } from './peerAuth.js';

export const PEER_SCRIPT_PATH = `${PEER_PREFIX}/dispatch-script`;

/** Request headers of a copy (the body is the file's bytes). */
export const PEER_HEADERS = {
  path: 'x-execgate-path',
  mode: 'x-execgate-mode',
  uid: 'x-execgate-uid',
  gid: 'x-execgate-gid',
  from: PEER_FROM_HEADER,
} as const;

function header(req: Request, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** The path header (URI-encoded by the sender); '' when it is not valid encoding. */
function pathHeader(req: Request): string {
  try {
    return decodeURIComponent(header(req, PEER_HEADERS.path) ?? '');
  } catch {
    return '';
  }
}

const integer = (text: string | undefined, radix = 10) => (text !== undefined && (radix === 8 ? /^[0-7]{1,4}$/ : /^\d{1,10}$/).test(text) ? parseInt(text, radix) : NaN);

/** The body, up to `max` bytes; null once it grows past that (the rest is discarded by Node). */
function readBody(req: Request, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * PUT /peer/dispatch-script: a peer's copy of a Rundeck dispatch script (headers: path,
 * mode in octal, uid, gid; body: the bytes). DELETE: Rundeck's rm reached a peer (path,
 * uid). Mounted behind peerTokenGuard (src/cluster/peerAuth.ts): only a request carrying the
 * cluster's token reaches it.
 */
export function peerScriptRouter(deps: { receiver: ScriptReceiver; log?: Logger }): Router {
  const { receiver, log } = deps;
  const router = Router();
  const refuse = (res: Response, status: number, error: string) => res.status(status).json({ error });

  const answerError = (req: Request, res: Response, path: string, err: unknown) => {
    const status = err instanceof ReplicaRefused ? err.status : 500;
    log?.warn(
      { peer: req.socket.remoteAddress, from: header(req, PEER_HEADERS.from) ?? null, method: req.method, path, status, err: (err as Error).message },
      'dispatch-script copy from a peer not applied',
    );
    if (!res.headersSent) refuse(res, status, (err as Error).message);
  };

  router.put(PEER_SCRIPT_PATH, async (req, res) => {
    const path = pathHeader(req);
    const mode = integer(header(req, PEER_HEADERS.mode), 8);
    const uid = integer(header(req, PEER_HEADERS.uid));
    const gid = integer(header(req, PEER_HEADERS.gid));
    if (!path || [mode, uid, gid].some(Number.isNaN)) {
      return void refuse(res, 400, `send the headers ${PEER_HEADERS.path}, ${PEER_HEADERS.mode} (octal), ${PEER_HEADERS.uid} and ${PEER_HEADERS.gid}`);
    }
    const declared = header(req, 'content-length');
    if (declared !== undefined && Number(declared) > receiver.maxBytes) {
      const why = `${declared} bytes is over leadership.scriptReplication.maxBytes (${receiver.maxBytes})`;
      receiver.noteRefused(path, why);
      return void answerError(req, res, path, new ReplicaRefused(413, why));
    }
    try {
      const content = await readBody(req, receiver.maxBytes);
      if (content === null) throw new ReplicaRefused(413, `the body is over leadership.scriptReplication.maxBytes (${receiver.maxBytes})`);
      const result = await receiver.receive({ path, mode, uid, gid, content });
      log?.info({ from: header(req, PEER_HEADERS.from) ?? req.socket.remoteAddress, path, bytes: content.length, result }, 'dispatch-script copy received');
      res.json({ result });
    } catch (err) {
      answerError(req, res, path, err);
    }
  });

  router.delete(PEER_SCRIPT_PATH, async (req, res) => {
    const path = pathHeader(req);
    const uid = integer(header(req, PEER_HEADERS.uid));
    if (!path || Number.isNaN(uid)) return void refuse(res, 400, `send the headers ${PEER_HEADERS.path} and ${PEER_HEADERS.uid}`);
    try {
      const removed = await receiver.remove(path, uid);
      log?.info({ from: header(req, PEER_HEADERS.from) ?? req.socket.remoteAddress, path, removed }, "dispatch-script copy removed at a peer's rm");
      res.json({ removed });
    } catch (err) {
      answerError(req, res, path, err);
    }
  });
  return router;
}
