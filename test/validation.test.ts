/**
 * Bad input on every protocol: a clear, specific error; nothing stored; nothing fanned out.
 * The same rules (lib/rules/sensors.ts) answer REST, MQTT 5, MQTT 3.1.1 and WebSocket writes.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectMqtt, mqttSubscriber, reasonCodeOf } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import { untilLive, type Received, type Subscriber } from './harness/inbox.js';

const harper = inject('harper');
const run = `val${Date.now().toString(36)}`;
const good = { location: 'lab', temperature: 21 };

interface BadCase {
  name: string;
  /** Raw payload text, so malformed JSON can be sent as is. */
  payload: string;
  error: string;
  field?: string;
}

const cases: BadCase[] = [
  {
    name: 'temperature not a number',
    payload: JSON.stringify({ ...good, temperature: 'hot' }),
    error: 'invalid_field',
    field: 'temperature',
  },
  {
    name: 'temperature below absolute zero',
    payload: JSON.stringify({ ...good, temperature: -273.16 }),
    error: 'invalid_field',
    field: 'temperature',
  },
  {
    name: 'temperature missing',
    payload: JSON.stringify({ location: 'lab' }),
    error: 'missing_field',
    field: 'temperature',
  },
  {
    name: 'location empty',
    payload: JSON.stringify({ ...good, location: '' }),
    error: 'invalid_field',
    field: 'location',
  },
  {
    name: 'location too long',
    payload: JSON.stringify({ ...good, location: 'x'.repeat(129) }),
    error: 'invalid_field',
    field: 'location',
  },
  {
    name: 'humidity above 100',
    payload: JSON.stringify({ ...good, humidity: 100.5 }),
    error: 'invalid_field',
    field: 'humidity',
  },
  {
    name: 'battery negative',
    payload: JSON.stringify({ ...good, battery: -1 }),
    error: 'invalid_field',
    field: 'battery',
  },
  {
    name: 'device time not a date',
    payload: JSON.stringify({ ...good, time: 'yesterday' }),
    error: 'invalid_field',
    field: 'time',
  },
  {
    name: 'unknown field',
    payload: JSON.stringify({ ...good, colour: 'red' }),
    error: 'unknown_field',
    field: 'colour',
  },
  {
    name: 'server field sent by client',
    payload: JSON.stringify({ ...good, updatedAt: 1 }),
    error: 'unknown_field',
    field: 'updatedAt',
  },
  {
    name: 'id in body differs from topic',
    payload: JSON.stringify({ ...good, id: 'someone-else' }),
    error: 'id_mismatch',
    field: 'id',
  },
  { name: 'not an object', payload: JSON.stringify([good]), error: 'not_an_object' },
  { name: 'malformed JSON', payload: '{"location":"lab","temperature":', error: 'malformed_json' },
];

let mqtt5: MqttClient;
let mqtt311: MqttClient;
let watchers: Subscriber[];
const mqtt311ClientId = `${run}-device-311`;

beforeAll(async () => {
  mqtt5 = await connectMqtt(harper, { protocolVersion: 5 });
  mqtt311 = await connectMqtt(harper, { protocolVersion: 4, clientId: mqtt311ClientId });
  watchers = [
    await mqttSubscriber(harper, 'sensors/#'),
    await wsSubscriber(harper, '/sensors/'),
    sseSubscriber(harper, '/sensors/'),
  ];
  const canary = `${run}-canary`;
  await untilLive(
    watchers,
    () => mqtt5.publishAsync(`sensors/${canary}`, JSON.stringify(good), { qos: 1 }),
    (item) => item.topic === `sensors/${canary}` || item.id === canary,
  );
});

afterAll(async () => {
  await Promise.all(watchers.map((watcher) => watcher.close()));
  await mqtt5.endAsync();
  await mqtt311.endAsync();
});

/** Every write below uses an id of this run; none of them may be stored or seen by a watcher. */
const badId = (protocol: string, index: number) => `${run}-${protocol}-${index}`;

async function expectNothingStoredOrFannedOut(protocol: string): Promise<void> {
  // Events reach a subscriber in order, so once a later good write has arrived everywhere, any
  // refused write that had been fanned out would have arrived before it.
  const sentinel = `${run}-${protocol}-sentinel`;
  expect((await rest(harper, 'PUT', `/sensors/${sentinel}`, { json: good })).status).toBe(204);
  for (const watcher of watchers) {
    await watcher.inbox.waitFor(
      (item) => item.topic === `sensors/${sentinel}` || item.id === sentinel,
      5000,
      `sentinel at ${watcher.name}`,
    );
    const leaked = watcher.inbox.filter(
      (item) =>
        (item.topic ?? item.id ?? '').includes(`${run}-${protocol}-`) &&
        !(item.topic ?? item.id ?? '').endsWith('sentinel'),
    );
    expect(leaked, `${watcher.name} received refused writes`).toEqual([]);
  }
  const stored = await rest<{ id: string }[]>(harper, 'GET', `/sensors/?id=sw=${run}-${protocol}-`);
  expect(stored.status).toBe(200);
  expect(stored.body.map((record) => record.id)).toEqual([sentinel]);
}

describe('REST', () => {
  it.each(cases.map((c, i) => [c.name, c, i] as const))('PUT %s -> 400 naming the error', async (_name, bad, index) => {
    const response = await rest(harper, 'PUT', `/sensors/${badId('rest', index)}`, {
      body: bad.payload,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(response.body).toMatchObject({ error: bad.error, ...(bad.field ? { field: bad.field } : {}) });
    expect(typeof (response.body as { message: unknown }).message).toBe('string');
  });

  it('PATCH that would leave a sensor without its required fields -> 400', async () => {
    const response = await rest(harper, 'PATCH', `/sensors/${badId('rest', 100)}`, { json: { humidity: 50 } });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'missing_field', field: 'location' });
  });

  it('PATCH with a bad field -> 400', async () => {
    const response = await rest(harper, 'PATCH', `/sensors/${badId('rest', 101)}`, {
      json: { temperature: Number.MAX_VALUE * -1 },
    });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_field', field: 'temperature' });
  });

  it('POST to the collection without an id -> 400; with a malformed body -> 400', async () => {
    const noId = await rest(harper, 'POST', '/sensors/', { json: good });
    expect(noId.status).toBe(400);
    expect(noId.body).toMatchObject({ error: 'invalid_id' });
    const broken = await rest(harper, 'POST', '/sensors/', {
      body: '{"id":',
      headers: { 'content-type': 'application/json' },
    });
    expect(broken.status).toBe(400);
    expect(broken.body).toMatchObject({ error: 'malformed_json' });
  });

  it('an id that is not a sensor id -> 400', async () => {
    const response = await rest(harper, 'PUT', `/sensors/${run}-rest-bad%20id`, { json: good });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_id', field: 'id' });
  });

  it('stored nothing and fanned out nothing', () => expectNothingStoredOrFannedOut('rest'));
});

describe('MQTT 5', () => {
  it.each(cases.map((c, i) => [c.name, c, i] as const))(
    'retained QoS 1 %s -> PUBACK reason code 128',
    async (_name, bad, index) => {
      await expect(
        mqtt5.publishAsync(`sensors/${badId('mqtt5', index)}`, bad.payload, { qos: 1, retain: true }),
      ).rejects.toMatchObject({ code: 128 });
    },
  );

  it.each(cases.map((c, i) => [c.name, c, i] as const))(
    'non-retained QoS 1 %s -> PUBACK reason code 128',
    async (_name, bad, index) => {
      await expect(
        mqtt5.publishAsync(`sensors/${badId('mqtt5', 50 + index)}`, bad.payload, { qos: 1 }),
      ).rejects.toMatchObject({ code: 128 });
    },
  );

  it('the client stays connected and can publish good readings', async () => {
    expect(mqtt5.connected).toBe(true);
    const ack = await mqtt5.publishAsync(`sensors/${run}-ok-mqtt5`, JSON.stringify(good), { qos: 1, retain: true });
    expect(reasonCodeOf(ack)).toBe(0);
    expect((await rest(harper, 'GET', `/sensors/${run}-ok-mqtt5`)).status).toBe(200);
  });

  it('stored nothing and fanned out nothing', () => expectNothingStoredOrFannedOut('mqtt5'));
});

describe('MQTT 3.1.1 (cannot carry an error in its PUBACK)', () => {
  it('refuses, logs the client id, stores and fans out nothing', async () => {
    for (const [index, bad] of cases.entries()) {
      await mqtt311.publishAsync(`sensors/${badId('mqtt311', index)}`, bad.payload, { qos: 1, retain: true });
    }
    await expectNothingStoredOrFannedOut('mqtt311');
    const log = readFileSync(harper.logFile, 'utf8');
    const refusals = log
      .split('\n')
      .filter((line) => line.includes('MQTT publish refused') && line.includes(`client "${mqtt311ClientId}"`));
    expect(refusals).toHaveLength(cases.length);
    expect(refusals[0]).toContain('invalid_field');
  });
});

describe('WebSocket', () => {
  it('answers each bad message with an error on the same socket, in order', async () => {
    const socket = await wsSubscriber(harper, `/sensors/${badId('ws', 0)}`);
    for (const bad of cases) socket.send(bad.payload);
    const replies: Received[] = [];
    for (let i = 0; i < cases.length; i++) {
      replies.push(
        await socket.inbox.waitFor(
          (item) => item.type === 'error' && !replies.includes(item),
          5000,
          `error reply ${i}`,
        ),
      );
    }
    expect(replies.map((reply) => (reply.value as { error: string }).error)).toEqual(cases.map((bad) => bad.error));
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
    await socket.close();
  });

  it('stored nothing and fanned out nothing', () => expectNothingStoredOrFannedOut('ws'));
});
