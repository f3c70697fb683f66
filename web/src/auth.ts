/**
 * Sign-in with Harper's cookie session: POST /login sets the cookie, GET /login says who is signed
 * in, POST /logout ends it. EventSource and WebSocket on this origin carry the cookie by themselves.
 *
 * The password is never stored: not in localStorage, not in the URL, not in the page. The one
 * exception is this module's memory, for this page's lifetime only, because MQTT over WebSocket
 * may need a CONNECT password when the broker does not take the cookie; a reload forgets it.
 */
import { HttpError, request } from './api.js';
import type { Session } from './types.js';

let remembered: { username: string; password: string } | undefined;

/** The signed-in user, or undefined when there is no valid session. */
export async function currentSession(): Promise<Session | undefined> {
  try {
    const { data } = await request<Session>('GET', '/login');
    return data && typeof data.username === 'string' ? data : undefined;
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) return undefined;
    throw error;
  }
}

export async function login(username: string, password: string): Promise<Session> {
  const { data } = await request<Session>('POST', '/login', { username, password });
  if (!data || typeof data.username !== 'string') throw new Error('The server did not confirm the sign-in.');
  remembered = { username: data.username, password };
  return data;
}

export async function logout(): Promise<void> {
  remembered = undefined;
  try {
    await request('POST', '/logout');
  } catch (error) {
    // Already signed out is signed out.
    if (!(error instanceof HttpError && error.status === 401)) throw error;
  }
}

/** The credentials typed into the form on this page, if any (MQTT CONNECT only). */
export function rememberedCredentials(): { username: string; password: string } | undefined {
  return remembered;
}

/** For the MQTT lane's own password prompt: kept like the sign-in form's password. */
export function remember(username: string, password: string): void {
  remembered = { username, password };
}

export function forget(): void {
  remembered = undefined;
}
