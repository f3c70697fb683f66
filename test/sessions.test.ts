/**
 * Cookie sessions (POST /login, the dashboard's way in) end when they should, and a signed-in
 * browser cannot be used by another origin. Harper 4.7.29 alone keeps a
 * session for ever, by user name only, reuses a session id the client chose, and accepts the
 * cookie from look-alike origins: lib/access/sessions.ts and lib/access/http-guard.ts add what is checked here.
 */
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestHarper, type HarperEndpoints, type TestHarper } from './harness/harper.js';
import { rest } from './harness/rest.js';
import { createUser, operations } from './harness/users.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

const harper = inject('harper');
const run = Date.now().toString(36);
const host = new URL(harper.httpUrl).host; // 127.0.0.1:<port>
const ownOrigin = `http://${host}`;
const cookieName = `${host.replace(/\W/, '_')}-hdb-session`;
const HOUR = 3_600_000;

interface Login {
  id: string;
  cookie: string;
  setCookie: string;
}

async function login(
  user: AdminCredentials,
  headers: Record<string, string> = {},
  target: HarperEndpoints = harper,
): Promise<Login> {
  const name = `${new URL(target.httpUrl).host.replace(/\W/, '_')}-hdb-session`;
  const response = await rest(target, 'POST', '/login', {
    auth: null,
    json: { username: user.username, password: user.password },
    headers,
  });
  expect(response.status, response.text).toBe(200);
  const setCookie = response.headers.get('set-cookie') ?? '';
  const id = setCookie.startsWith(`${name}=`) ? setCookie.slice(name.length + 1).split(';')[0] : undefined;
  expect(id, setCookie).toBeTruthy();
  return { id: id!, cookie: `${name}=${id}`, setCookie };
}

/** GET /login with a cookie: who it logs in, or 401. */
async function whoAmI(cookie: string, headers: Record<string, string> = {}, target: HarperEndpoints = harper) {
  return rest<{ username?: string; role?: string }>(target, 'GET', '/login', {
    auth: null,
    headers: { cookie, ...headers },
  });
}

/** An SSE stream read as text, authenticated by the cookie alone. */
async function openStream(target: HarperEndpoints, path: string, cookie: string) {
  const response = await fetch(target.httpUrl + path, { headers: { accept: 'text/event-stream', cookie } });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  let text = '';
  let done = false;
  let wake: () => void = () => undefined;
  // Resolves when the server ends the stream (or cuts its connection).
  const ended = (async () => {
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += Buffer.from(chunk.value).toString();
        wake();
      }
    } catch {
      // a cut connection
    }
    done = true;
    wake();
  })();
  /** Waits for each chunk until the text holds `pattern`. */
  const until = async (pattern: string) => {
    while (!text.includes(pattern)) {
      if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return { ended, until, text: () => text, cancel: () => reader.cancel().catch(() => undefined) };
}

/** A WebSocket authenticated by the cookie alone; `closed` resolves when it closes. */
async function openSocket(target: HarperEndpoints, path: string, cookie: string, protocol?: string) {
  const socket = new WebSocket(target.wsUrl + path, protocol, { headers: { cookie } });
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  return { socket, closed };
}

// Harper's session records (system.hdb_session) cannot be read through the operations API (403 for
// the system database), so these tests observe what a client can: whether a cookie logs anyone in.

describe('sessions end', () => {
  it('the cookie expires after the idle timeout (not in year 8307) and is SameSite=Strict', async () => {
    const user = await createUser(harper, 'viewer', `${run}-expiry`);
    const { setCookie } = await login(user);
    const expires = Date.parse(/Expires=([^;]+)/.exec(setCookie)?.[1] ?? '');
    expect(expires - Date.now()).toBeGreaterThan(11 * HOUR);
    expect(expires - Date.now()).toBeLessThan(13 * HOUR);
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).not.toContain('SameSite=None');
    expect(setCookie).toContain('HttpOnly');
  });

  it('login issues a fresh session id, never the one the client sent (no session fixation)', async () => {
    const user = await createUser(harper, 'viewer', `${run}-fixation`);
    const chosen = `fixed-${run}`;
    const session = await login(user, { cookie: `${cookieName}=${chosen}` });
    expect(session.id).not.toBe(chosen);
    expect((await whoAmI(`${cookieName}=${chosen}`)).status).toBe(401);
    expect((await whoAmI(session.cookie)).body).toMatchObject({ username: user.username });
  });

  it('a second login on a signed-in browser replaces its session: the old id is dead', async () => {
    const user = await createUser(harper, 'viewer', `${run}-relogin`);
    const first = await login(user);
    const second = await login(user, { cookie: first.cookie });
    expect(second.id).not.toBe(first.id);
    expect((await whoAmI(first.cookie)).status).toBe(401);
    expect((await whoAmI(second.cookie)).status).toBe(200);
  });

  it('logout deletes the session on the server: the cookie, replayed, logs nobody in', async () => {
    const user = await createUser(harper, 'viewer', `${run}-logout`);
    const session = await login(user);
    expect((await whoAmI(session.cookie)).body).toMatchObject({ username: user.username });
    const out = await rest(harper, 'POST', '/logout', { auth: null, headers: { cookie: session.cookie } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/Expires=Thu, 01 Jan 1970/);
    expect((await whoAmI(session.cookie)).status).toBe(401);
    expect((await rest(harper, 'GET', '/sensors/', { auth: null, headers: { cookie: session.cookie } })).status).toBe(
      401,
    );
    // Logging in again from that browser (it still sends the old cookie) gets a new id.
    expect((await login(user, { cookie: session.cookie })).id).not.toBe(session.id);
  });

  it('a password change ends the user’s sessions (the new password logs in again)', async () => {
    const user = await createUser(harper, 'operator', `${run}-rotate`);
    const session = await login(user);
    expect((await whoAmI(session.cookie)).status).toBe(200);
    await operations(harper).alterUser(user.username, { password: `${user.password}-new` });
    expect((await whoAmI(session.cookie)).status).toBe(401);
    expect((await rest(harper, 'GET', '/sensors/', { auth: null, headers: { cookie: session.cookie } })).status).toBe(
      401,
    );
    await login({ username: user.username, password: `${user.password}-new` });
  });

  it('logout ends the streams the session opened (SSE, WebSocket), at once', async () => {
    const user = await createUser(harper, 'viewer', `${run}-logout-streams`);
    const session = await login(user);
    const sensor = `${run}-logout-streams`;
    expect(
      (await rest(harper, 'PUT', `/sensors/${sensor}`, { json: { location: 'before', temperature: 1 } })).status,
    ).toBe(204);
    const sse = await openStream(harper, `/sensors/${sensor}`, session.cookie);
    await sse.until('before');
    const socket = await openSocket(harper, `/sensors/${sensor}`, session.cookie);
    expect((await rest(harper, 'POST', '/logout', { auth: null, headers: { cookie: session.cookie } })).status).toBe(
      204,
    );
    await sse.ended;
    await socket.closed;
  });

  it('removing a user ends its sessions, and re-adding the name (same password even) does not revive them', async () => {
    const user = await createUser(harper, 'operator', `${run}-removed`);
    const before = await login(user);
    const kept = await login(user);
    await operations(harper).dropUser(user.username);
    expect((await whoAmI(before.cookie)).status).toBe(401);
    await operations(harper).addUser(user.username, 'operator', user.password);
    expect((await whoAmI(kept.cookie)).status).toBe(401);
    const write = await rest(harper, 'PATCH', `/signs/${run}-removed`, {
      auth: null,
      json: { message: 'revived' },
      headers: { cookie: kept.cookie, origin: ownOrigin },
    });
    expect(write.status).toBe(401);
  });
});

describe('a Harper with SESSION_IDLE_TIMEOUT=3s and ALLOWED_ORIGINS (12 h and none by default)', () => {
  let short: TestHarper;
  beforeAll(async () => {
    // A Harper of its own with a 3 s timeout: waiting for time to pass is what is tested here.
    short = await startTestHarper({
      env: { SESSION_IDLE_TIMEOUT: '3s', ALLOWED_ORIGINS: 'https://dash.example.com, https://ops.example.com/' },
    });
  });
  afterAll(() => short?.dispose());

  it('an idle session is refused after the timeout, while one in use lives on past it and its cookie is renewed', async () => {
    const target = short.endpoints;
    const user = await createUser(target, 'viewer', `${run}-idle`);
    const idle = await login(user, {}, target);
    const active = await login(user, {}, target);
    expect(Date.parse(/Expires=([^;]+)/.exec(idle.setCookie)?.[1] ?? '') - Date.now()).toBeLessThan(10_000);
    const started = Date.now();
    let renewed = '';
    // Use `active` every 1.2 s for 6 s: twice the timeout.
    while (Date.now() - started < 6000) {
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const used = await whoAmI(active.cookie, {}, target);
      expect(used.status).toBe(200);
      renewed = used.headers.get('set-cookie') ?? renewed;
    }
    expect(renewed).toContain(`${active.cookie};`);
    const stale = await whoAmI(idle.cookie, {}, target);
    expect(stale.status).toBe(401);
    expect(stale.headers.get('set-cookie')).toMatch(/Expires=Thu, 01 Jan 1970/);
    expect((await rest(target, 'GET', '/sensors/', { auth: null, headers: { cookie: idle.cookie } })).status).toBe(401);
  });

  it('a password change cuts the streams its sessions opened (SSE, WebSocket, MQTT over WebSocket); a session whose stream stays open counts as in use', async () => {
    const target = short.endpoints;
    const user = await createUser(target, 'viewer', `${run}-streams`);
    const watching = await login(user, {}, target);
    const sensor = `${run}-streams`;
    expect(
      (await rest(target, 'PUT', `/sensors/${sensor}`, { json: { location: 'before', temperature: 1 } })).status,
    ).toBe(204);
    const sse = await openStream(target, `/sensors/${sensor}`, watching.cookie);
    await sse.until('before');
    const socket = await openSocket(target, `/sensors/${sensor}`, watching.cookie);
    const mqttSocket = await openSocket(target, '/mqtt', watching.cookie, 'mqtt');
    // Twice the idle timeout with no request but the open streams: still signed in.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect((await whoAmI(watching.cookie, {}, target)).status).toBe(200);
    await operations(target).alterUser(user.username, { password: `${user.password}-new` });
    // The next check (every second here) ends the session and cuts every stream.
    await sse.ended;
    await socket.closed;
    await mqttSocket.closed;
    expect((await whoAmI(watching.cookie, {}, target)).status).toBe(401);
  }, 30_000);

  it('a page on an origin in ALLOWED_ORIGINS may sign in and use its session; others still may not', async () => {
    const target = short.endpoints;
    const user = await createUser(target, 'operator', `${run}-allowed`);
    const origin = 'https://dash.example.com';
    const response = await rest(target, 'POST', '/login', { auth: null, json: user, headers: { origin } });
    expect(response.status).toBe(200);
    // Harper names the cookie after the page's origin.
    const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0];
    expect(cookie).toMatch(/^dash_example\.com-hdb-session=/);
    expect((await whoAmI(cookie, { origin }, target)).body).toMatchObject({ username: user.username });
    expect(
      (
        await rest(target, 'PATCH', `/signs/${run}-allowed`, {
          auth: null,
          json: { message: 'allowed' },
          headers: { cookie, origin },
        })
      ).status,
    ).toBe(204);
    expect((await whoAmI(cookie, { origin: 'https://ops.example.com' }, target)).status).toBe(401); // allowed, but not its cookie
    expect((await whoAmI(cookie, { origin: 'https://dash-example.com' }, target)).status).toBe(403);
  });
});

describe('a signed-in browser cannot be used from another origin', () => {
  const foreign = ['http://evil.example', `http://${host.replace('.', '-')}`, `https://${host}`, 'null'];

  it.each(foreign)(
    'REST writes with the session cookie and Origin %s are refused (403), nothing written',
    async (origin) => {
      const operator = await createUser(harper, 'operator', `${run}-csrf-${foreign.indexOf(origin)}`);
      const { cookie } = await login(operator);
      const sign = `${run}-csrf-${foreign.indexOf(origin)}`;
      expect(
        (
          await rest(harper, 'PUT', `/signs/${sign}`, {
            json: { message: 'start', brightness: 1, power: 'on', color: '#000000' },
          })
        ).status,
      ).toBe(204);
      const headers = { cookie, origin };
      const attempts = [
        await rest(harper, 'PUT', `/signs/${sign}`, {
          auth: null,
          headers,
          json: { message: 'put', brightness: 2, power: 'on', color: '#000000' },
        }),
        await rest(harper, 'PATCH', `/signs/${sign}`, { auth: null, headers, json: { message: 'patch' } }),
        await rest(harper, 'POST', '/rules/', {
          auth: null,
          headers,
          json: { sensorId: '*', field: 'temperature', above: 99 },
        }),
        await rest(harper, 'DELETE', `/rules/${run}-none`, { auth: null, headers }),
        await rest(harper, 'GET', `/signs/${sign}`, { auth: null, headers }),
      ];
      expect(attempts.map((response) => response.status)).toEqual([403, 403, 403, 403, 403]);
      expect(attempts[0].body).toMatchObject({ error: 'forbidden' });
      expect((await rest(harper, 'GET', `/signs/${sign}`)).body).toMatchObject({ message: 'start' });
      // The same cookie from our own origin works.
      expect(
        (
          await rest(harper, 'PATCH', `/signs/${sign}`, {
            auth: null,
            headers: { cookie, origin: ownOrigin },
            json: { message: 'ours' },
          })
        ).status,
      ).toBe(204);
    },
  );

  it('SSE with the cookie from a foreign or look-alike origin is refused; from our own it streams', async () => {
    const viewer = await createUser(harper, 'viewer', `${run}-csrf-sse`);
    const { cookie } = await login(viewer);
    // A stream opens with the record's current state, so a stored record makes it answer at once.
    expect(
      (await rest(harper, 'PUT', `/sensors/${run}-sse`, { json: { location: 'sse', temperature: 1 } })).status,
    ).toBe(204);
    const open = async (origin: string) => {
      const controller = new AbortController();
      const response = await fetch(`${harper.httpUrl}/sensors/${run}-sse`, {
        headers: { accept: 'text/event-stream', cookie, origin },
        signal: controller.signal,
      });
      controller.abort();
      return response.status;
    };
    expect(await open('http://evil.example')).toBe(403);
    expect(await open(`http://${host.replace('.', '-')}`)).toBe(403);
    expect(await open(ownOrigin)).toBe(200);
  });

  /** Opens a WebSocket with these headers: 'open', or the HTTP status that refused the upgrade. */
  function upgrade(path: string, headers: Record<string, string>, protocol?: string): Promise<number | 'open'> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(harper.wsUrl + path, protocol, { headers });
      socket.once('open', () => {
        socket.close();
        resolve('open');
      });
      socket.once('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        socket.terminate();
      });
      socket.once('error', reject);
    });
  }

  it('WebSocket and MQTT-over-WebSocket upgrades with the cookie from a foreign or look-alike origin are refused with 403', async () => {
    const operator = await createUser(harper, 'operator', `${run}-csrf-ws`);
    const { cookie } = await login(operator);
    for (const origin of ['http://evil.example', `http://${host.replace('.', '-')}`]) {
      expect(await upgrade(`/signs/${run}-ws`, { cookie, origin })).toBe(403);
      expect(await upgrade('/mqtt', { cookie, origin }, 'mqtt')).toBe(403);
      // Browser-cached Basic credentials are as ambient as a cookie.
      expect(
        await upgrade(`/signs/${run}-ws`, {
          authorization: `Basic ${Buffer.from(`${operator.username}:${operator.password}`).toString('base64')}`,
          origin,
        }),
      ).toBe(403);
    }
    expect(await upgrade(`/signs/${run}-ws`, { cookie, origin: ownOrigin })).toBe('open');
  });

  it('an MQTT-over-WebSocket client authenticated by the cookie connects from our origin only', async () => {
    const operator = await createUser(harper, 'operator', `${run}-csrf-mqtt`);
    const { cookie } = await login(operator);
    const connect = (origin: string) =>
      new Promise<string>((resolve) => {
        const client = mqtt.connect(harper.wsUrl + '/mqtt', {
          protocolVersion: 5,
          reconnectPeriod: 0,
          connectTimeout: 5000,
          clientId: `${operator.username}.csrf-${origin.length}`,
          wsOptions: { headers: { cookie, origin } },
        });
        client.once('connect', () => {
          client.end(true);
          resolve('connected');
        });
        client.once('error', (error) => {
          client.end(true);
          resolve(error.message);
        });
        client.once('close', () => resolve('closed'));
      });
    expect(await connect(ownOrigin)).toBe('connected');
    // A look-alike origin maps to the same cookie name in Harper, so without the guard it connected.
    expect(await connect(`http://${host.replace('.', '-')}`)).not.toBe('connected');
  });

  it('Basic-auth clients that send no Origin keep working, and a login from another origin is refused', async () => {
    const operator = await createUser(harper, 'operator', `${run}-basic`);
    expect(
      (await rest(harper, 'PATCH', `/signs/${run}-basic`, { auth: operator, json: { message: 'basic' } })).status,
    ).toBe(204);
    const foreignLogin = await rest(harper, 'POST', '/login', {
      auth: null,
      json: operator,
      headers: { origin: 'http://evil.example' },
    });
    expect(foreignLogin.status).toBe(403);
    expect(foreignLogin.headers.get('set-cookie')).toBeNull();
  });

  it('the operations API, which honours the same cookie, refuses it from another origin', async () => {
    const operator = await createUser(harper, 'operator', `${run}-ops`);
    const session = await login(operator);
    const call = (headers: Record<string, string>) =>
      fetch(harper.operationsUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ operation: 'user_info' }),
      });
    // Harper looks the cookie up under the name the Origin gives (else the Host: another port, so
    // another name), so only a request naming the dashboard's origin, or a look-alike of it, can
    // carry the dashboard's session to the operations API: both are foreign to it.
    for (const origin of [ownOrigin, `http://${host.replace('.', '-')}`]) {
      const response = await call({ cookie: session.cookie, origin });
      expect(response.status, origin).toBe(403);
      await response.arrayBuffer();
    }
  });

  it('no page of ours may be framed: frame-ancestors none and X-Frame-Options DENY, the dashboard included', async () => {
    for (const path of ['/', '/index.html', '/login']) {
      const response = await rest(harper, 'GET', path, { auth: null });
      expect(response.headers.get('content-security-policy'), path).toBe("frame-ancestors 'none'");
      expect(response.headers.get('x-frame-options'), path).toBe('DENY');
    }
  });
});
