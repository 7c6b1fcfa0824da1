import { errors } from '../errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:9422';

export interface GatewayReply<T> {
  status: number;
  body: T;
}

/**
 * One request to a gateway's HTTP surface, for the CLI verbs. tokenNote says where the
 * token came from (or where the CLI looked for one); a refusal repeats it.
 */
export async function callGateway<T>(baseUrl: string, method: 'GET' | 'POST', path: string, token?: string, tokenNote?: string): Promise<GatewayReply<T>> {
  let url: URL;
  try {
    url = new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  } catch {
    throw errors.urlInvalid(baseUrl, DEFAULT_URL);
  }
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw errors.httpUnreachable(url.origin, why);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw errors.httpReplyNotJson(url.href, res.status, text);
  }
  if (res.status === 401 || res.status === 403) {
    const error = (body as { error?: string }).error ?? `HTTP ${res.status}`;
    throw errors.httpForbidden(url.origin, method, path, res.status, error, tokenNote);
  }
  return { status: res.status, body: body as T };
}
