/**
 * REST on the same origin. Requests carry Harper's session cookie (set by POST /login), never a
 * password.
 */
import type { ApiError } from './types.js';

/** A non-2xx answer, with the server's refusal when it sent one. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError | null,
  ) {
    super(body?.message ?? `the server answered ${status}`);
    this.name = 'HttpError';
  }
}

/** Anything that went wrong with a request, in words for the page. */
export function describeError(error: unknown): string {
  if (error instanceof HttpError) {
    if (error.body?.message) return error.body.message;
    if (error.status === 401) return 'Your session has ended: sign in again.';
    if (error.status === 403) return 'You are not allowed to do that.';
    return `The server answered ${error.status}.`;
  }
  if (error instanceof TypeError) return 'The server cannot be reached.';
  return error instanceof Error ? error.message : String(error);
}

function isApiError(value: unknown): value is ApiError {
  return value !== null && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string';
}

/** One path segment per id part, so nested ids (`site-a/101`) keep their slashes. */
export function idPath(id: string): string {
  return id.split('/').map(encodeURIComponent).join('/');
}

export interface Answer<T> {
  status: number;
  data: T | undefined;
  header(name: string): string | null;
}

/**
 * Sends a request with XMLHttpRequest rather than fetch, for one reason: Harper adds
 * `WWW-Authenticate: Basic` to every 401, and a browser answers that challenge on a fetch by opening
 * its own password dialog (headless Chromium just waits). The placeholder user "_" given to
 * XMLHttpRequest is sent only in reply to such a challenge, where it fails at once, so the 401 comes
 * back to the page instead, which then shows its own sign-in form. With a valid session cookie
 * there is no challenge and nothing but the cookie is sent. It is not a credential.
 */
function send(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string; header(name: string): string | null }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path, true, '_', '_');
    xhr.setRequestHeader('accept', 'application/json');
    if (body !== undefined) xhr.setRequestHeader('content-type', 'application/json');
    xhr.timeout = 30_000;
    xhr.onload = () =>
      resolve({ status: xhr.status, text: xhr.responseText, header: (name) => xhr.getResponseHeader(name) });
    xhr.onerror = () => reject(new TypeError(`${method} ${path}: network error`));
    xhr.ontimeout = () => reject(new TypeError(`${method} ${path}: timed out`));
    xhr.send(body === undefined ? null : JSON.stringify(body));
  });
}

/** Sends a request; parses JSON answers; throws HttpError for anything but 2xx. */
export async function request<T>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
  const { status, text, header } = await send(method, path, body);
  let parsed: unknown;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (status < 200 || status > 299) throw new HttpError(status, isApiError(parsed) ? parsed : null);
  return { status, data: parsed as T | undefined, header };
}

export async function getJson<T>(path: string): Promise<T> {
  const { data } = await request<T>('GET', path);
  if (data === undefined) throw new Error(`no JSON from ${path}`);
  return data;
}
