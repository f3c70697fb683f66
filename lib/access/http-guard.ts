/**
 * What every HTTP request and WebSocket upgrade on the HTTP port (and every operations API request,
 * see the end of this file) passes before Harper's own authentication (the hooks are registered
 * with `runFirst`):
 *
 * 1. Cross-origin use of a signed-in browser is refused. A request that carries credentials (a
 *    session cookie or an Authorization header) AND an `Origin` that is neither this server's own
 *    (scheme and host of the request) nor listed in ALLOWED_ORIGINS gets 403; for a WebSocket (REST
 *    or MQTT over WebSocket) the upgrade itself is refused with 403. Clients that send no Origin
 *    (curl, devices, mqtt.js, ws in Node) are not affected, and requests without credentials go on
 *    to be answered 401 as before. Harper names the session cookie after the Origin with only its
 *    first non-word character replaced, so look-alike origins (`127-0.0.1` vs `127.0.0.1`) would
 *    otherwise be logged in with the real site's cookie; an exact comparison refuses them.
 *    Browser-cached Basic credentials are ambient like a cookie, hence Authorization too.
 * 2. Sessions follow the rules of lib/access/sessions.ts: an expired, stale-credential or
 *    Harper-made session is deleted and its cookie stripped from the request, so Harper sees an
 *    anonymous request; POST /login never reuses the id the client sent (a fresh one is issued).
 *    The session cookie is rewritten to `SameSite=Strict` with an expiry of the idle timeout,
 *    renewed as the session is used.
 * 3. Nobody may frame our pages: `Content-Security-Policy: frame-ancestors 'none'` and
 *    `X-Frame-Options: DENY` on every response, the static dashboard files included.
 *
 * 4. Open streams end with their session (below).
 *
 * Cost per request without an Origin or a session cookie: three header reads and two response
 * headers; with a session cookie, two table reads (the session, the user). MQTT over TCP never
 * passes here.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { server } from 'harperdb';
import {
  IDLE_MS,
  TOUCH_MS,
  checkSession,
  endSession,
  readCookie,
  sessionCookieName,
  withoutSessionCookies,
} from './sessions.js';

/**
 * Streams (WebSocket, MQTT over WebSocket, SSE) authenticated by a session, by session id. Harper
 * keeps a stream's user for the stream's lifetime, so a stream opened before its session ended
 * would keep delivering: every STREAM_CHECK_MS the sessions of open streams are checked again
 * (which also counts as use, so a dashboard that only watches stays signed in), and the streams of
 * an ended session are cut (their socket closed; the dashboard then reconnects and meets the login).
 * POST /logout cuts its session's streams on this thread at once.
 */
const STREAM_CHECK_MS = Math.min(TOUCH_MS, 10_000);
const streams = new Map<string, Set<Duplex>>();

function watchStream(id: string, socket: Duplex | undefined): void {
  if (!socket || socket.destroyed) return;
  let sockets = streams.get(id);
  if (!sockets) streams.set(id, (sockets = new Set()));
  sockets.add(socket);
  socket.once('close', () => {
    sockets.delete(socket);
    if (sockets.size === 0 && streams.get(id) === sockets) streams.delete(id);
  });
}

function cutStreams(id: string): void {
  for (const socket of streams.get(id) ?? []) socket.destroy();
  streams.delete(id);
}

setInterval(() => {
  for (const id of [...streams.keys()]) {
    checkSession(id).then(
      (verdict) => {
        if (verdict.kind === 'valid') return;
        if (verdict.kind === 'end') void endSession(id).catch(() => undefined);
        cutStreams(id);
      },
      () => undefined, // the store unreadable for a moment: check again next time
    );
  }
}, STREAM_CHECK_MS).unref();

interface HeaderBag {
  get(name: string): string | string[] | undefined;
  set(name: string, value: string | string[]): void;
  delete?(name: string): void;
}

interface HarperRequest {
  method: string;
  pathname: string;
  protocol: string;
  isWebSocket?: boolean;
  headers: HeaderBag;
  /** Node's request; its socket carries the WebSocket or the SSE stream. */
  nodeRequest?: { socket?: Duplex };
}

interface HarperResponse {
  status?: number;
  headers?: HeaderBag | Record<string, string>;
  body?: unknown;
  handlesHeaders?: boolean;
}

type Next = (request: HarperRequest) => Promise<HarperResponse | undefined> | HarperResponse | undefined;
type UpgradeNext = (request: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

interface HarperServer {
  http(
    listener: (request: HarperRequest, next: Next) => unknown,
    options?: { runFirst?: boolean; port?: number },
  ): unknown;
  upgrade(
    listener: (request: IncomingMessage, socket: Duplex, head: Buffer, next: UpgradeNext) => unknown,
    options?: { runFirst?: boolean },
  ): unknown;
}

const FRAME_HEADERS: [string, string][] = [
  ['Content-Security-Policy', "frame-ancestors 'none'"],
  ['X-Frame-Options', 'DENY'],
];

/** ALLOWED_ORIGINS: comma-separated origins (`https://dash.example.com`) trusted besides our own. */
const ALLOWED = new Set(
  (process.env.ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim().toLowerCase().replace(/\/+$/, ''))
    .filter(Boolean),
);

const first = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/**
 * Whether `origin` is the server's own or allowed. Our own: the scheme and host the request came to,
 * or those a proxy in front reports (X-Forwarded-Proto/-Host: a cross-site page cannot set them).
 */
export function originAllowed(
  origin: string,
  host: string | undefined,
  protocol: string,
  forwardedProto?: string,
  forwardedHost?: string,
): boolean {
  const normalised = origin.trim().toLowerCase();
  if (ALLOWED.has(normalised)) return true;
  const candidates = [
    host && `${protocol}://${host}`,
    (forwardedProto || forwardedHost) && `${forwardedProto ?? protocol}://${forwardedHost ?? host}`,
  ];
  return candidates.some((own) => typeof own === 'string' && own.toLowerCase() === normalised);
}

const refusalBody = (origin: string) =>
  JSON.stringify({
    error: 'forbidden',
    message: `a request with credentials from origin "${origin}" is refused: it is not this server's origin and not in ALLOWED_ORIGINS`,
  });

function hasSessionCookie(cookie: string | undefined): boolean {
  return cookie !== undefined && cookie.includes('hdb-session=');
}

function setHeader(response: HarperResponse, name: string, value: string | string[]): void {
  const headers = response.headers;
  if (!headers) response.headers = { [name]: value } as Record<string, string>;
  else if (typeof headers.set === 'function') (headers as HeaderBag).set(name, value);
  else (headers as Record<string, string | string[]>)[name] = value;
}

function getHeader(response: HarperResponse, name: string): string | string[] | undefined {
  const headers = response.headers;
  if (!headers) return undefined;
  if (typeof headers.get === 'function') return (headers as HeaderBag).get(name);
  const record = headers as Record<string, string>;
  return record[name] ?? record[name.toLowerCase()];
}

function cookieExpiry(now = Date.now()): string {
  return new Date(now + IDLE_MS + TOUCH_MS).toUTCString();
}

/** Harper's session cookie with our expiry and SameSite=Strict instead of its year 8307 and None. */
function tightenCookie(value: string): string {
  if (!value.includes('hdb-session=')) return value;
  const parts = value.split(/;\s*/).filter((part) => !/^(expires|samesite)=/i.test(part));
  return [...parts, `Expires=${cookieExpiry()}`, 'SameSite=Strict'].join('; ');
}

/** Secure as Harper sets it: on HTTPS and on localhost / 127.0.0.1, where browsers accept it over HTTP. */
function secureCookie(request: HarperRequest, host: string | undefined): boolean {
  return request.protocol === 'https' || /^(localhost:|127\.0\.0\.1:|::1)/.test(host ?? '');
}

function addFrameHeaders(response: HarperResponse): void {
  const body = response.body as
    | { on?: (event: string, listener: (res: { setHeader(name: string, value: string): void }) => void) => void }
    | undefined;
  if (response.handlesHeaders) {
    // The static plugin answers with a `send` stream that writes its own headers; it emits
    // `headers` just before, which is where ours can go.
    body?.on?.('headers', (res) => FRAME_HEADERS.forEach(([name, value]) => res.setHeader(name, value)));
    return;
  }
  for (const [name, value] of FRAME_HEADERS) setHeader(response, name, value);
}

async function guardRequest(request: HarperRequest, next: Next): Promise<HarperResponse | undefined> {
  const headers = request.headers;
  const origin = first(headers.get('origin'));
  const cookie = first(headers.get('cookie'));
  const host = first(headers.get('host'));
  if (
    origin !== undefined &&
    (hasSessionCookie(cookie) || headers.get('authorization') !== undefined || request.pathname === '/login')
  ) {
    const allowed = originAllowed(
      origin,
      host,
      request.protocol,
      first(headers.get('x-forwarded-proto')),
      first(headers.get('x-forwarded-host')),
    );
    if (!allowed)
      return {
        status: 403,
        headers: { 'Content-Type': 'application/json', ...Object.fromEntries(FRAME_HEADERS) },
        body: refusalBody(origin),
      };
  }

  let refreshCookie: string | undefined;
  let clearCookie: string | undefined;
  let loggingOut: string | undefined;
  if (hasSessionCookie(cookie)) {
    const name = sessionCookieName(origin ?? host);
    const id = readCookie(cookie, name);
    const isLogin = request.method === 'POST' && request.pathname === '/login';
    if (id !== undefined) {
      const verdict = isLogin ? { kind: 'end' as const } : await checkSession(id);
      if (verdict.kind === 'end' || verdict.kind === 'none') {
        // Harper would reuse this id on login (fixation) or log the request in by name alone.
        if (verdict.kind === 'end') await endSession(id);
        const rest = withoutSessionCookies(cookie!);
        if (rest === undefined) headers.delete?.('cookie');
        else headers.set('cookie', rest);
        if (!isLogin) clearCookie = name;
      } else {
        if (verdict.touch)
          refreshCookie = `${name}=${id}; Path=/; Expires=${cookieExpiry()}; HttpOnly; SameSite=Strict${secureCookie(request, host) ? '; Secure' : ''}`;
        if (request.isWebSocket || first(headers.get('accept'))?.includes('text/event-stream'))
          watchStream(id, request.nodeRequest?.socket);
        if (request.method === 'POST' && request.pathname === '/logout') loggingOut = id;
      }
    }
  }

  const response = await next(request);
  if (!response || typeof response !== 'object' || request.isWebSocket) return response;
  // POST /logout deleted the session (lib/resources/session.ts): its streams end, the browser forgets the cookie.
  if (request.method === 'POST' && request.pathname === '/logout' && (response.status ?? 200) < 400) {
    if (loggingOut) cutStreams(loggingOut);
    clearCookie = sessionCookieName(origin ?? host);
  }
  const setCookie = getHeader(response, 'set-cookie');
  if (setCookie !== undefined) {
    // Several cookies stay several headers (a comma cannot join them: Expires contains one).
    setHeader(
      response,
      'Set-Cookie',
      Array.isArray(setCookie) ? setCookie.map(tightenCookie) : tightenCookie(setCookie),
    );
  } else if (refreshCookie) {
    setHeader(response, 'Set-Cookie', refreshCookie);
  } else if (clearCookie) {
    setHeader(
      response,
      'Set-Cookie',
      `${clearCookie}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict`,
    );
  }
  addFrameHeaders(response);
  return response;
}

function guardUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, next: UpgradeNext): unknown {
  const { origin, cookie, authorization, host } = request.headers;
  if (origin !== undefined && (hasSessionCookie(cookie) || authorization !== undefined)) {
    const protocol = (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    const allowed = originAllowed(
      origin,
      host,
      protocol,
      first(request.headers['x-forwarded-proto']),
      first(request.headers['x-forwarded-host']),
    );
    if (!allowed) {
      const body = refusalBody(origin);
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return undefined;
    }
  }
  return next(request, socket, head);
}

const harperServer = server as unknown as HarperServer;
harperServer.http(guardRequest, { runFirst: true });
// The operations API honours the same session cookie (cookies are not bound to a port), so it gets
// the same guard. Its ports are known here only from the environment npm start and the test
// harness set (Harper exposes no configuration to components); on an instance configured by file
// alone the operations API keeps Harper's behaviour (see the README).
for (const name of ['OPERATIONSAPI_NETWORK_PORT', 'OPERATIONSAPI_NETWORK_SECUREPORT']) {
  const port = Number(process.env[name]);
  if (Number.isInteger(port) && port > 0) harperServer.http(guardRequest, { runFirst: true, port });
}
harperServer.upgrade(guardUpgrade, { runFirst: true });
