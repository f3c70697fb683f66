/**
 * Replay and gap-free resume: a subscriber that disconnects, misses 20 updates and reconnects with
 * `?startTime=<the last localTime it saw>` receives exactly those 20, in order, on SSE and
 * WebSocket (record and table), then live events again; `previousCount` returns the last n;
 * MQTT takes the same parameters on the topic and resumes persistent sessions; replay obeys the
 * same read rights as live subscriptions.
 */
import { describe, expect, inject, it } from 'vitest';
import { connectMqtt, mqttSubscriber } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import { createUser } from './harness/users.js';
import { untilLive, valueField, type Received, type Subscriber } from './harness/inbox.js';

const harper = inject('harper');
const run = `rp${Date.now().toString(36)}`;

async function write(id: string, temperature: number): Promise<void> {
  expect((await rest(harper, 'PUT', `/sensors/${id}`, { json: { location: 'replay', temperature } })).status).toBe(204);
}

const temperatures = (items: Received[]) => items.map((item) => valueField(item, 'temperature'));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The last localTime a subscriber saw for `id` (SSE and WebSocket frames carry it). */
function lastLocalTime(subscriber: Subscriber, id: string): number {
  const mine = subscriber.inbox.filter((item) => item.id === id);
  return mine[mine.length - 1].localTime!;
}

type Transport = 'SSE' | 'WebSocket';

/** Writes until the subscriber receives one of the writes (it may have opened after the first). */
async function untilLiveByWriting(subscriber: Subscriber, id: string): Promise<void> {
  let temperature = 100;
  await untilLive(
    [subscriber],
    () => write(id, ++temperature),
    (item) => Number(valueField(item, 'temperature')) > 100,
  );
}

async function open(transport: Transport, path: string): Promise<Subscriber> {
  return transport === 'SSE' ? sseSubscriber(harper, path) : wsSubscriber(harper, path);
}

describe.each(['SSE', 'WebSocket'] as const)('%s resume with startTime', (transport) => {
  it.each(['record', 'table'] as const)(
    '%s subscription: disconnect, 20 updates, reconnect -> exactly those 20, in order, then live',
    async (level) => {
      const id = `${run}-${transport}-${level}`;
      const path = level === 'record' ? `/sensors/${id}` : '/sensors/';
      await write(id, 0);
      const first = await open(transport, path);
      await first.inbox.waitFor((item) => item.id === id && valueField(item, 'temperature') === 0);
      const resumeFrom = lastLocalTime(first, id);
      await first.close();

      for (const temperature of range(1, 20)) await write(id, temperature);

      const second = await open(transport, `${path}?startTime=${resumeFrom}`);
      try {
        await second.inbox.waitFor((item) => item.id === id && valueField(item, 'temperature') === 20);
        await write(id, 21); // and live events follow the replay
        await second.inbox.waitFor((item) => item.id === id && valueField(item, 'temperature') === 21);
        expect(temperatures(second.inbox.filter((item) => item.id === id))).toEqual(range(1, 21));
      } finally {
        await second.close();
      }
    },
  );

  it('a record resume with nothing missed repeats nothing: the next event is the first one received', async () => {
    const id = `${run}-${transport}-nothing-missed`;
    await write(id, 0);
    const first = await open(transport, `/sensors/${id}`);
    await first.inbox.waitFor((item) => valueField(item, 'temperature') === 0);
    const resumeFrom = lastLocalTime(first, id);
    await first.close();
    const second = await open(transport, `/sensors/${id}?startTime=${resumeFrom}`);
    try {
      await untilLiveByWriting(second, id);
      expect(second.inbox.items.map((item) => valueField(item, 'temperature')).filter((t) => t === 0)).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('previousCount returns the last n events, oldest first', async () => {
    const id = `${run}-${transport}-count`;
    for (const temperature of range(1, 10)) await write(id, temperature);
    const subscriber = await open(transport, `/sensors/${id}?previousCount=4`);
    try {
      await subscriber.inbox.waitFor((item) => valueField(item, 'temperature') === 10);
      expect(temperatures(subscriber.inbox.filter((item) => item.id === id))).toEqual([7, 8, 9, 10]);
    } finally {
      await subscriber.close();
    }
  });
});

describe('MQTT', () => {
  it('replays from the topic query: sensors/<id>?startTime=<ms>', async () => {
    const id = `${run}-mqtt-topic`;
    await write(id, 0);
    // Harper's commit times carry sub-millisecond steps and may sit just past Date.now(): let the
    // clock move past write 0's before taking the instant the replay starts from.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const before = Date.now();
    for (const temperature of range(1, 20)) await write(id, temperature);
    const subscriber = await mqttSubscriber(harper, `sensors/${id}?startTime=${before}`);
    try {
      await subscriber.inbox.waitFor((item) => valueField(item, 'temperature') === 20);
      expect(temperatures(subscriber.inbox.items)).toEqual(range(1, 20));
    } finally {
      await subscriber.close();
    }
  });

  it('previousCount on a topic returns the last n', async () => {
    const id = `${run}-mqtt-count`;
    for (const temperature of range(1, 10)) await write(id, temperature);
    const subscriber = await mqttSubscriber(harper, `sensors/${id}?previousCount=3`);
    try {
      await subscriber.inbox.waitFor((item) => valueField(item, 'temperature') === 10);
      expect(temperatures(subscriber.inbox.items)).toEqual([8, 9, 10]);
    } finally {
      await subscriber.close();
    }
  });

  it('a persistent session (clean: false, QoS 1) gets the 20 updates it missed, in order', async () => {
    const id = `${run}-mqtt-session`;
    const clientId = `${run}-durable`;
    await write(id, 0);
    const first = await mqttSubscriber(harper, `sensors/${id}`, { clientId, clean: false, qos: 1 });
    await first.inbox.waitFor((item) => valueField(item, 'temperature') === 0);
    await first.close();

    for (const temperature of range(1, 20)) await write(id, temperature);

    const received: unknown[] = [];
    let allArrived: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allArrived = resolve));
    const client = await connectMqtt(harper, {
      clientId,
      clean: false,
      onMessage: (_topic, payload) => {
        received.push((JSON.parse(payload.toString()) as { temperature: number }).temperature);
        if (received.includes(20)) allArrived();
      },
    });
    try {
      await done;
      expect(received).toEqual(range(1, 20));
    } finally {
      await client.endAsync();
    }
  });
});

describe('replay obeys read rights', () => {
  it('a device cannot replay another sensor or the table on any protocol; a viewer can', async () => {
    const other = `${run}-rights-other`;
    await write(other, 1);
    const device = await createUser(harper, 'device', `${run}-rights-dev`);
    const viewer = await createUser(harper, 'viewer', `${run}-rights-viewer`);

    // A start time inside the replay window (lib/streams/replay.ts), so that only the rights decide.
    const since = Date.now() - 60_000;
    for (const path of [
      `/sensors/${other}?startTime=${since}`,
      `/sensors/?startTime=${since}`,
      `/sensors/${other}?previousCount=10`,
    ]) {
      const sse = sseSubscriber(harper, path, { credentials: device });
      expect((await sse.failed).status).toBe(403);
      await sse.close();
      const socket = await wsSubscriber(harper, path, { credentials: device });
      expect((await socket.closed).code).toBe(3003);
      expect(socket.inbox.items).toEqual([]);
    }
    const mqtt = await connectMqtt(harper, { credentials: device });
    // (A query after a wildcard, sensors/#?startTime=..., is not a valid MQTT filter: clients refuse it.)
    for (const topic of [`sensors/${other}?startTime=${since}`, `sensors/${other}?previousCount=5`]) {
      const code = await mqtt.subscribeAsync(topic, { qos: 1 }).then(
        (granted) => granted[0].qos,
        (error: { packet?: { granted?: number[] } }) => error.packet?.granted?.[0],
      );
      expect(code).toBe(135);
    }
    await mqtt.endAsync();

    const allowed = sseSubscriber(harper, `/sensors/${other}?startTime=${since}`, { credentials: viewer });
    expect((await allowed.inbox.waitFor((item) => item.id === other)).value).toMatchObject({ temperature: 1 });
    await allowed.close();
  });

  it('refuses malformed replay parameters with a reason', async () => {
    for (const query of [
      'startTime=yesterday',
      'previousCount=0',
      'previousCount=5000',
      'startTime=1&previousCount=2',
    ]) {
      const response = await rest(harper, 'GET', `/sensors/${run}-x?${query}`, {
        headers: { accept: 'text/event-stream' },
      });
      expect(response.status, query).toBe(400);
      expect(response.text).toContain('invalid_query');
    }
  });
});
