/**
 * Publish once, every protocol sees the same event.
 *
 * Every publisher (MQTT 3.1.1 and 5 retained, MQTT non-retained, WebSocket send, REST PUT, PATCH
 * and POST) writes one reading; every subscriber (MQTT exact topic, `sensors/#`, `sensors/+`, MQTT
 * over WebSocket, WebSocket record and table, SSE record and table) must receive it with identical
 * values. Stored publishes must then be readable over REST; non-retained ones must not be stored.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectMqtt, mqttSubscriber, reasonCodeOf } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import { untilLive, valueField, type Received, type Subscriber } from './harness/inbox.js';

const harper = inject('harper');
const run = `mx${Date.now().toString(36)}`;

interface Publisher {
  name: string;
  stored: boolean;
  /** Prepares state the publish needs (PATCH needs an existing record). */
  prepare?: (id: string) => Promise<void>;
  publish: (id: string, reading: Reading) => Promise<void>;
}

interface Reading {
  location: string;
  temperature: number;
  humidity: number;
}

let mqtt311: MqttClient;
let mqtt5: MqttClient;

const publishers: Publisher[] = [
  {
    name: 'MQTT 3.1.1 retained QoS 1',
    stored: true,
    publish: async (id, reading) =>
      void (await mqtt311.publishAsync(`sensors/${id}`, JSON.stringify(reading), { qos: 1, retain: true })),
  },
  {
    name: 'MQTT 5 retained QoS 1',
    stored: true,
    publish: async (id, reading) => {
      const ack = await mqtt5.publishAsync(`sensors/${id}`, JSON.stringify(reading), { qos: 1, retain: true });
      expect(reasonCodeOf(ack)).toBe(0);
    },
  },
  {
    name: 'MQTT non-retained QoS 0',
    stored: false,
    publish: async (id, reading) =>
      void (await mqtt311.publishAsync(`sensors/${id}`, JSON.stringify(reading), { qos: 0 })),
  },
  {
    name: 'WebSocket send',
    stored: true,
    publish: async (id, reading) => {
      const socket = await wsSubscriber(harper, `/sensors/${id}`);
      socket.send(reading);
      const reply = await socket.inbox.waitFor(
        (item) => item.type === 'ack' || item.type === 'error',
        5000,
        'a WebSocket reply',
      );
      expect(reply.value).toMatchObject({ type: 'ack', id });
      await socket.close();
    },
  },
  {
    name: 'REST PUT',
    stored: true,
    publish: async (id, reading) =>
      expect((await rest(harper, 'PUT', `/sensors/${id}`, { json: reading })).status).toBe(204),
  },
  {
    name: 'REST PATCH',
    stored: true,
    prepare: async (id) => {
      const created = await rest(harper, 'PUT', `/sensors/${id}`, {
        json: { location: 'before-patch', temperature: -50, humidity: 1 },
      });
      expect(created.status).toBe(204);
    },
    publish: async (id, reading) =>
      expect((await rest(harper, 'PATCH', `/sensors/${id}`, { json: reading })).status).toBe(204),
  },
  {
    name: 'REST POST collection',
    stored: true,
    publish: async (id, reading) => {
      const response = await rest(harper, 'POST', '/sensors/', { json: { id, ...reading } });
      expect(response.status).toBe(201);
      expect(response.headers.get('location')).toBe(`/sensors/${id}`);
    },
  },
];

const idOf = (publisher: Publisher) => `${run}-${publishers.indexOf(publisher)}`;
const tableSubscribers: Subscriber[] = [];
const recordSubscribers = new Map<string, Subscriber[]>();
/** Latency in ms per publisher and subscriber, for the printed matrix. */
const results = new Map<string, Map<string, number>>();

beforeAll(async () => {
  mqtt311 = await connectMqtt(harper, { protocolVersion: 4 });
  mqtt5 = await connectMqtt(harper, { protocolVersion: 5 });
  for (const publisher of publishers) await publisher.prepare?.(idOf(publisher));

  const ids = publishers.map(idOf);
  tableSubscribers.push(
    await mqttSubscriber(harper, 'sensors/#', { name: 'MQTT sensors/#' }),
    await mqttSubscriber(harper, 'sensors/+', { name: 'MQTT sensors/+' }),
    sseSubscriber(harper, '/sensors/', { name: 'SSE table' }),
    await wsSubscriber(harper, '/sensors/', { name: 'WS table' }),
  );
  for (const id of ids) {
    recordSubscribers.set(id, [
      await mqttSubscriber(harper, `sensors/${id}`, { name: 'MQTT exact topic' }),
      await mqttSubscriber(harper, `sensors/${id}`, { name: 'MQTT over WebSocket', overWebSocket: true }),
      sseSubscriber(harper, `/sensors/${id}`, { name: 'SSE record' }),
      await wsSubscriber(harper, `/sensors/${id}`, { name: 'WS record' }),
    ]);
  }

  // Prove every subscription is live before measuring: a non-retained canary per id (validated,
  // fanned out, never stored) must reach every subscriber that covers that id.
  for (const id of ids) {
    await untilLive(
      subscribersOf(id),
      () => mqtt5.publishAsync(`sensors/${id}`, JSON.stringify({ location: 'canary', temperature: -1 }), { qos: 1 }),
      (item) => isFor(item, id) && valueField(item, 'location') === 'canary',
    );
  }
});

afterAll(async () => {
  const all = [...tableSubscribers, ...[...recordSubscribers.values()].flat()];
  await Promise.all(all.map((subscriber) => subscriber.close()));
  await mqtt311?.endAsync();
  await mqtt5?.endAsync();
  printMatrix();
});

/** Table and wildcard subscribers see every id; record subscribers only their own. */
function subscribersOf(id: string): Subscriber[] {
  return [...tableSubscribers, ...(recordSubscribers.get(id) ?? [])];
}

function isFor(item: Received, id: string): boolean {
  return item.topic !== undefined ? item.topic === `sensors/${id}` : item.id === id;
}

describe('every publisher reaches every subscriber with identical values', () => {
  publishers.forEach((publisher, index) => {
    it(publisher.name, async () => {
      const id = idOf(publisher);
      // A temperature no other publish uses marks this publish's event on every subscriber.
      const reading: Reading = { location: `room-${index}`, temperature: 20 + index + 0.25, humidity: 40 + index };
      const sentAt = performance.now();
      await publisher.publish(id, reading);
      const received = await Promise.all(
        subscribersOf(id).map((subscriber) =>
          subscriber.inbox.waitFor(
            (item) => isFor(item, id) && valueField(item, 'temperature') === reading.temperature,
            5000,
            `${publisher.name} at ${subscriber.name}`,
          ),
        ),
      );
      const row = new Map<string, number>();
      subscribersOf(id).forEach((subscriber, i) => row.set(subscriber.name, received[i].at - sentAt));
      results.set(publisher.name, row);

      // Each subscriber got this publish once: a later non-retained publish of the same id is
      // delivered after it (per-topic order), so by then a second copy would have arrived.
      const fence = -2 - index;
      await mqtt5.publishAsync(`sensors/${id}`, JSON.stringify({ location: 'fence', temperature: fence }), { qos: 1 });
      await Promise.all(
        subscribersOf(id).map((subscriber) =>
          subscriber.inbox.waitFor(
            (item) => isFor(item, id) && valueField(item, 'temperature') === fence,
            5000,
            `the fence after ${publisher.name} at ${subscriber.name}`,
          ),
        ),
      );
      for (const subscriber of subscribersOf(id)) {
        const copies = subscriber.inbox.items.filter(
          (item) => isFor(item, id) && valueField(item, 'temperature') === reading.temperature,
        );
        expect(copies.length, `${publisher.name} at ${subscriber.name}`).toBe(1);
      }

      const first = received[0].value as Record<string, unknown>;
      expect(first).toMatchObject({ id, ...reading });
      expect(typeof first.updatedAt).toBe('number');
      for (const item of received) expect(item.value).toEqual(first);

      const stored = await rest(harper, 'GET', `/sensors/${id}`);
      if (publisher.stored) {
        expect(stored.status).toBe(200);
        expect(stored.body).toEqual(first);
      } else {
        expect(stored.status).toBe(404);
      }
    });
  });
});

function printMatrix(): void {
  const columns = [
    'MQTT exact topic',
    'MQTT sensors/#',
    'MQTT sensors/+',
    'MQTT over WebSocket',
    'WS record',
    'WS table',
    'SSE record',
    'SSE table',
  ];
  const width = 20;
  const lines = [['publisher \\ subscriber'.padEnd(28), ...columns.map((c) => c.padEnd(width))].join('')];
  for (const publisher of publishers) {
    const row = results.get(publisher.name);
    const cells = columns.map((column) => {
      const ms = row?.get(column);
      return (ms === undefined ? 'MISSING' : `ok ${ms.toFixed(1)} ms`).padEnd(width);
    });
    lines.push([publisher.name.padEnd(28), ...cells].join(''));
  }
  console.log(`\nCross-protocol matrix (latency from publish call to receipt):\n${lines.join('\n')}\n`);
}
