/**
 * Hostile input: oversize, malformed, oddly typed, deeply nested and strangely named writes, many
 * connections from one client and a flood of bad CONNECTs. Each gets a clear error (where the
 * protocol can carry one); the server stays up and keeps answering others; nothing bad is stored.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectMqtt, mqttSubscriber, reasonCodeOf } from './harness/mqtt.js';
import { basicAuth, rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import type { Subscriber } from './harness/inbox.js';

const harper = inject('harper');
const run = `hx${Date.now().toString(36)}`;
const good = { location: 'lab', temperature: 20 };
const big = { location: 'lab', temperature: 20, filler: 'x'.repeat(70 * 1024) };
/** Kept as text: JSON.stringify itself overflows the stack on such nesting. */
const deep = '{"location":' + '['.repeat(5000) + ']'.repeat(5000) + ',"temperature":1}';
const LIMIT = 64 * 1024;

let mqtt5: MqttClient;

beforeAll(async () => {
  mqtt5 = await connectMqtt(harper, { protocolVersion: 5 });
});

afterAll(async () => {
  await mqtt5.endAsync();
  // Whatever happened above, the server still answers, and nothing of this run was stored.
  expect((await rest(harper, 'GET', '/', { auth: null })).status).toBe(200);
  const stored = await rest<{ id: string }[]>(harper, 'GET', `/sensors/?id=sw=${run}`);
  expect(stored.body.map((record) => record.id).filter((id) => !id.includes('-ok'))).toEqual([]);
  expect((await rest(harper, 'GET', `/${run}/topic`)).status).toBe(404);
});

/** A raw HTTP request, so paths are sent exactly as written (fetch would normalise `..`). */
function rawRequest(
  method: string,
  path: string,
  body: string,
  contentType = 'application/json',
): Promise<{ status: number; body: unknown }> {
  const url = new URL(harper.httpUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: { authorization: basicAuth(harper.admin), 'content-type': contentType },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('payload size limit (64 KiB per record)', () => {
  it('REST: 413 before the body is parsed, for sensors and topics', async () => {
    for (const path of [`/sensors/${run}-big`, `/${run}/topic`]) {
      const response = await rest(harper, 'PUT', path, { json: big });
      expect(response.status).toBe(413);
      expect(response.body).toMatchObject({ error: 'payload_too_large', rule: `at most ${LIMIT} bytes` });
    }
  });

  it('MQTT 5: PUBACK 128, sensors and topics, retained and not', async () => {
    for (const topic of [`sensors/${run}-big`, `${run}/topic`]) {
      for (const retain of [true, false]) {
        await expect(mqtt5.publishAsync(topic, JSON.stringify(big), { qos: 1, retain })).rejects.toMatchObject({
          code: 128,
        });
      }
    }
  });

  it('WebSocket: an error naming the limit', async () => {
    const socket = await wsSubscriber(harper, `/sensors/${run}-big`);
    socket.send(big);
    const reply = await socket.inbox.waitFor((item) => item.type === 'error');
    expect(reply.value).toMatchObject({ error: 'payload_too_large' });
    await socket.close();
  });
});

describe('content types', () => {
  it.each([
    ['application/xml', '<reading temperature="1"/>', 415, 'unsupported_content_type'],
    ['application/x-www-form-urlencoded', 'location=lab&temperature=1', 415, 'unsupported_content_type'],
    ['multipart/form-data; boundary=x', '--x--', 415, 'unsupported_content_type'],
    ['text/plain', 'hello', 400, 'not_an_object'],
  ])('REST %s -> %i %s', async (type, body, status, error) => {
    const response = await rest(harper, 'PUT', `/sensors/${run}-type`, { body, headers: { 'content-type': type } });
    expect(response.status).toBe(status);
    expect(response.body).toMatchObject({ error });
  });
});

describe('deeply nested JSON (5,000 levels, well under the size limit)', () => {
  it('REST: 400 too_deep for sensors and topics', async () => {
    for (const path of [`/sensors/${run}-deep`, `/${run}/topic`]) {
      const response = await rest(harper, 'PUT', path, { body: deep, headers: { 'content-type': 'application/json' } });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: 'too_deep' });
    }
  });

  it('MQTT 5 and WebSocket: refused', async () => {
    await expect(mqtt5.publishAsync(`sensors/${run}-deep`, deep, { qos: 1, retain: true })).rejects.toMatchObject({
      code: 128,
    });
    await expect(mqtt5.publishAsync(`${run}/topic`, deep, { qos: 1, retain: true })).rejects.toMatchObject({
      code: 128,
    });
    const socket = await wsSubscriber(harper, `/sensors/${run}-deep`);
    socket.send(deep);
    expect((await socket.inbox.waitFor((item) => item.type === 'error')).value).toMatchObject({ error: 'too_deep' });
    await socket.close();
  });
});

describe('odd ids and topics', () => {
  it.each([
    ['dot-dot level', `/sensors/${run}/../x`],
    ['encoded slash', `/sensors/${run}%2F%2Fx`],
    ['control character', `/sensors/${run}%01x`],
    ['NUL', `/sensors/${run}%00x`],
    ['space', `/sensors/${run}%20x`],
    ['10 KB id', `/sensors/${run}${'a'.repeat(10_000)}`],
  ])('sensors over REST: %s -> 400 invalid_id', async (_name, path) => {
    const response = await rawRequest('PUT', path, JSON.stringify(good));
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_id' });
  });

  it.each([
    ['dot-dot level', `/${run}/../x`],
    ['empty level', `/${run}//x`],
    ['control character', `/${run}/a%01b`],
    ['10 KB topic', `/${run}/${'a'.repeat(10_000)}`],
  ])('topics over REST: %s -> 400 invalid_id', async (_name, path) => {
    const response = await rawRequest('PUT', path, JSON.stringify({ x: 1 }));
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_id' });
  });

  it.each([
    ['dot-dot level', `${run}/../x`],
    ['empty level', `${run}//x`],
    ['control character', `${run}/a\u0001b`],
    ['wildcard in a name', `${run}/a+b`],
    ['10 KB topic', `${run}/${'a'.repeat(10_000)}`],
    ['sensor id with a space', `sensors/${run} x`],
  ])('MQTT 5: %s -> refused, client still connected', async (_name, topic) => {
    const client = await connectMqtt(harper, { protocolVersion: 5 });
    try {
      const outcome = await client.publishAsync(topic, JSON.stringify(good), { qos: 1, retain: true }).then(
        (packet) => reasonCodeOf(packet),
        (error: { code?: number }) => error.code ?? -1,
      );
      expect(outcome).toBeGreaterThanOrEqual(0x80);
      // The connection survives a refused publish.
      expect(reasonCodeOf(await client.publishAsync(`sensors/${run}-ok`, JSON.stringify(good), { qos: 1 }))).toBe(0);
    } finally {
      await client.endAsync();
    }
  });
});

describe('many connections from one client', () => {
  it('300 MQTT, 60 WebSocket and 30 SSE connections at once: all served, others still served', async () => {
    const subscribers: Subscriber[] = [];
    try {
      const mqtt = Array.from({ length: 300 }, () => connectMqtt(harper, { protocolVersion: 4 }));
      const clients = await Promise.all(mqtt);
      const sockets = await Promise.all(Array.from({ length: 60 }, () => wsSubscriber(harper, '/sensors/')));
      subscribers.push(...sockets);
      for (let i = 0; i < 30; i++) subscribers.push(sseSubscriber(harper, `/sensors/${run}-many`));
      expect(clients.every((client) => client.connected)).toBe(true);

      // Someone else, meanwhile: a subscriber and a write, end to end.
      const watcher = await mqttSubscriber(harper, `sensors/${run}-many-ok`);
      expect((await rest(harper, 'PUT', `/sensors/${run}-many-ok`, { json: good })).status).toBe(204);
      await watcher.inbox.waitFor((item) => item.topic === `sensors/${run}-many-ok`);
      await watcher.close();
      await Promise.all(clients.map((client) => client.endAsync()));
    } finally {
      await Promise.all(subscribers.map((subscriber) => subscriber.close()));
    }
  }, 60_000);
});

describe('a flood of bad CONNECTs', () => {
  it('300 wrong-password CONNECTs are all refused while a good client works', async () => {
    const wrong = { username: harper.admin.username, password: 'wrong' };
    const flood = Array.from({ length: 300 }, (_, i) =>
      connectMqtt(harper, { protocolVersion: i % 2 ? 4 : 5, credentials: i % 3 ? wrong : null }).then(
        async (client) => {
          await client.endAsync();
          return 'connected';
        },
        () => 'refused',
      ),
    );
    const good5 = await connectMqtt(harper, { protocolVersion: 5 });
    expect(
      reasonCodeOf(await good5.publishAsync(`sensors/${run}-flood-ok`, JSON.stringify(good), { qos: 1, retain: true })),
    ).toBe(0);
    await good5.endAsync();
    const outcomes = await Promise.all(flood);
    expect(outcomes.filter((outcome) => outcome === 'connected')).toEqual([]);
    expect((await rest(harper, 'GET', `/sensors/${run}-flood-ok`)).status).toBe(200);
  }, 60_000);
});
