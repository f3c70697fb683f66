/** Plain HTTP against the running Harper, with admin, other or no credentials. */
import type { AdminCredentials } from '../../launcher/harper-process.js';
import { basicAuth } from '../../launcher/harper-process.js';
import type { HarperEndpoints } from './harper.js';

export type Credentials = AdminCredentials | null;

export interface RestResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export { basicAuth };

export async function rest<T = unknown>(
  harper: HarperEndpoints,
  method: string,
  path: string,
  options: { json?: unknown; body?: string; headers?: Record<string, string>; auth?: Credentials } = {},
): Promise<RestResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  const auth = options.auth === undefined ? harper.admin : options.auth;
  if (auth) headers.authorization = basicAuth(auth);
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(harper.httpUrl + path, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}
