/**
 * Nothing anonymous, on any protocol, including from localhost: every client here connects from
 * 127.0.0.1, so these tests also prove that localhost is not trusted (authorizeLocal is off).
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { connectMqtt, mqttSubscriber } from './harness/mqtt.js';
import { basicAuth, rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import { createUser } from './harness/users.js';

const harper = inject('harper');
const id = `anon${Date.now().toString(36)}`;
const wrong = { username: harper.admin.username, password: 'not-the-password' };

afterAll(async () => {
  // Nothing any refused client tried may have been stored.
  const stored = await rest(harper, 'GET', `/sensors/${id}`);
  expect(stored.status).toBe(404);
});

describe('REST', () => {
  it.each([
    ['GET', '/sensors/'],
    ['GET', `/sensors/${id}`],
    ['PUT', `/sensors/${id}`],
    ['PATCH', `/sensors/${id}`],
    ['POST', '/sensors/'],
    ['DELETE', `/sensors/${id}`],
    ['GET', '/factory/line-1/status'],
    ['PUT', '/factory/line-1/status'],
    ['POST', '/server-notice'],
  ])('%s %s without credentials -> 401', async (method, path) => {
    const json = method === 'GET' || method === 'DELETE' ? undefined : { id, location: 'x', temperature: 1 };
    const response = await rest(harper, method, path, { auth: null, json });
    expect(response.status).toBe(401);
  });

  it('only the admin may announce a stop (POST /server-notice): others get 403', async () => {
    const viewer = await createUser(harper, 'viewer', `${id}-notice-viewer`);
    const operator = await createUser(harper, 'operator', `${id}-notice-operator`);
    for (const who of [viewer, operator])
      expect((await rest(harper, 'POST', '/server-notice', { auth: who, json: { message: 'x' } })).status).toBe(403);
  });

  it('a wrong password -> 401', async () => {
    expect((await rest(harper, 'GET', '/sensors/', { auth: wrong })).status).toBe(401);
  });

  it('the dashboard page itself is public; its data is not', async () => {
    const page = await rest(harper, 'GET', '/', { auth: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('the operations API refuses anonymous and wrong-password calls', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: basicAuth(wrong) }];
    for (const headers of attempts) {
      const response = await fetch(harper.operationsUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ operation: 'list_users' }),
      });
      expect(response.status).toBe(401);
    }
  });
});

describe('SSE', () => {
  it.each(['/sensors/', `/sensors/${id}`])('%s without credentials -> 401', async (path) => {
    const sse = sseSubscriber(harper, path, { credentials: null });
    const failure = await sse.failed;
    await sse.close();
    expect(failure.status).toBe(401);
  });
});

describe('WebSocket', () => {
  it.each(['/sensors/', `/sensors/${id}`])(
    '%s without credentials is closed with 3000 (unauthorised)',
    async (path) => {
      const socket = await wsSubscriber(harper, path, { credentials: null });
      socket.send({ location: 'x', temperature: 1 });
      const closed = await socket.closed;
      expect(closed.code).toBe(3000);
      expect(socket.inbox.items).toEqual([]);
    },
  );
});

describe('MQTT', () => {
  it.each([
    ['3.1.1 anonymous', 4, null],
    ['5 anonymous', 5, null],
    ['3.1.1 wrong password', 4, wrong],
    ['5 wrong password', 5, wrong],
  ] as const)('%s: CONNECT refused', async (_name, protocolVersion, credentials) => {
    await expect(connectMqtt(harper, { protocolVersion, credentials })).rejects.toThrow(
      /Not authorized|Bad user ?name or password/i,
    );
  });

  it('MQTT over WebSocket anonymous: CONNECT refused', async () => {
    await expect(connectMqtt(harper, { overWebSocket: true, credentials: null })).rejects.toThrow(
      /Not authorized|Bad user ?name or password/i,
    );
  });

  it('an anonymous client cannot subscribe even after a refused CONNECT', async () => {
    await expect(mqttSubscriber(harper, 'sensors/#', { credentials: null })).rejects.toThrow();
  });
});

describe('the catch-all topic space follows the same roles', () => {
  it('viewers read it but may not write; devices may do neither; over REST and MQTT', async () => {
    const topic = `${id}/line/status`;
    expect((await rest(harper, 'PUT', `/${topic}`, { json: { state: 'on' } })).status).toBe(204);
    const viewer = await createUser(harper, 'viewer', `${id}-viewer`);
    const device = await createUser(harper, 'device', `${id}-device`);

    expect((await rest(harper, 'GET', `/${topic}`, { auth: viewer })).status).toBe(200);
    const viewerWrite = await rest(harper, 'PUT', `/${topic}`, { json: { state: 'off' }, auth: viewer });
    expect(viewerWrite.status).toBe(403);
    expect(viewerWrite.body).toMatchObject({ error: 'forbidden' });
    expect((await rest(harper, 'GET', `/${topic}`, { auth: device })).status).toBe(403);
    expect((await rest(harper, 'PUT', `/${topic}`, { json: { state: 'off' }, auth: device })).status).toBe(403);

    const viewerMqtt = await connectMqtt(harper, { credentials: viewer });
    const granted = await viewerMqtt.subscribeAsync(`${id}/#`, { qos: 1 });
    expect(granted[0].qos).toBe(1);
    await expect(
      viewerMqtt.publishAsync(topic, JSON.stringify({ state: 'off' }), { qos: 1, retain: true }),
    ).rejects.toMatchObject({ code: 128 });
    await viewerMqtt.endAsync();

    const deviceMqtt = await connectMqtt(harper, { credentials: device });
    const refused = await deviceMqtt.subscribeAsync(`${id}/#`, { qos: 1 }).then(
      (grants) => grants[0].qos,
      (error: { packet?: { granted?: number[] } }) => error.packet?.granted?.[0],
    );
    expect(refused).toBe(135);
    await deviceMqtt.endAsync();

    expect((await rest(harper, 'GET', `/${topic}`)).body).toEqual({ id: topic, state: 'on' });
  });
});
