/**
 * Nothing acknowledged is ever lost: every write acknowledged over REST (2xx), MQTT (QoS 1
 * PUBACK) and WebSocket (ack) survives a SIGKILL of Harper right after the acknowledgement, state
 * and history alike. Runs its own Harper, since it kills it.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMqtt, reasonCodeOf } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { wsSubscriber } from './harness/ws.js';
import { sseSubscriber } from './harness/sse.js';
import { valueField, type Subscriber } from './harness/inbox.js';

let harper: TestHarper;

beforeAll(async () => {
  harper = await startTestHarper();
});

afterAll(async () => {
  await harper?.dispose();
});

describe('durability', () => {
  it('acknowledged writes on every protocol survive a SIGKILL immediately after the last acknowledgement', async () => {
    const endpoints = harper.endpoints;
    const acknowledged: { id: string; temperature: number }[] = [];
    const mqtt = await connectMqtt(endpoints, { protocolVersion: 5 });
    const socket = await wsSubscriber(endpoints, '/sensors/dur-ws');
    // Interleave the protocols, as fast as each acknowledges.
    for (let i = 0; i < 60; i++) {
      const temperature = i;
      if (i % 3 === 0) {
        const response = await rest(endpoints, 'PUT', '/sensors/dur-rest', { json: { location: 'd', temperature } });
        if (response.status === 204) acknowledged.push({ id: 'dur-rest', temperature });
      } else if (i % 3 === 1) {
        const ack = await mqtt.publishAsync('sensors/dur-mqtt', JSON.stringify({ location: 'd', temperature }), {
          qos: 1,
          retain: true,
        });
        if (reasonCodeOf(ack) === 0) acknowledged.push({ id: 'dur-mqtt', temperature });
      } else {
        const replies = () => socket.inbox.filter((item) => item.type === 'ack' || item.type === 'error').length;
        const before = replies();
        socket.send({ location: 'd', temperature });
        await socket.inbox.waitFor(() => replies() > before);
        if (socket.inbox.items.filter((item) => item.type === 'ack' || item.type === 'error').at(-1)?.type === 'ack')
          acknowledged.push({ id: 'dur-ws', temperature });
      }
    }
    // The moment the last acknowledgement is in: no clean shutdown, no flush.
    process.kill(harper.instance.pid, 'SIGKILL');
    await harper.instance.exited;
    mqtt.end(true);
    socket.socket.terminate();

    harper = await startTestHarper({ dataDir: harper.dataDir, admin: endpoints.admin });
    const after = harper.endpoints;
    for (const id of ['dur-rest', 'dur-mqtt', 'dur-ws']) {
      const mine = acknowledged.filter((write) => write.id === id).map((write) => write.temperature);
      const state = await rest<{ temperature: number }>(after, 'GET', `/sensors/${id}`);
      expect(state.status, id).toBe(200);
      expect(state.body.temperature, id).toBe(mine[mine.length - 1]);
      const history = await rest<{ temperature: number }[]>(
        after,
        'GET',
        `/readings/?sensorId=${id}&sort(time)&limit(1000)`,
      );
      expect(
        history.body.map((reading) => reading.temperature),
        id,
      ).toEqual(mine);
    }
    expect(acknowledged).toHaveLength(60);
  }, 90_000);
});

describe('MQTT persistent sessions', () => {
  it('a QoS 1 subscriber with clean: false gets all 100 messages published while it was away, in order, also across a Harper restart', async () => {
    const clientId = 'durable-subscriber';
    const topic = 'sensors/ps-1';
    const publisher = await connectMqtt(harper.endpoints);
    await publisher.publishAsync(topic, JSON.stringify({ location: 'p', temperature: 0 }), { qos: 1, retain: true });
    const first = await connectMqtt(harper.endpoints, { clientId, clean: false });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();

    for (let i = 1; i <= 50; i++)
      await publisher.publishAsync(topic, JSON.stringify({ location: 'p', temperature: i }), { qos: 1, retain: true });
    await publisher.endAsync();
    // Harper restarts (cleanly) while the subscriber is away, then 50 more arrive.
    await harper.instance.stop();
    harper = await startTestHarper({ dataDir: harper.dataDir, admin: harper.endpoints.admin });
    const again = await connectMqtt(harper.endpoints);
    for (let i = 51; i <= 100; i++)
      await again.publishAsync(topic, JSON.stringify({ location: 'p', temperature: i }), { qos: 1, retain: true });
    await again.endAsync();

    const received: number[] = [];
    let complete: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (complete = resolve));
    const back = await connectMqtt(harper.endpoints, {
      clientId,
      clean: false,
      onMessage: (_topic, payload) => {
        received.push((JSON.parse(payload.toString()) as { temperature: number }).temperature);
        if (received.includes(100)) complete();
      },
    });
    try {
      await done;
      expect(received).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    } finally {
      await back.endAsync();
    }
  }, 90_000);
});

describe('reconnect storm', () => {
  it('50 SSE and WebSocket clients drop at once and resume with startTime: zero gaps, zero duplicates', async () => {
    const endpoints = harper.endpoints;
    const id = 'storm-1';
    const write = async (temperature: number) =>
      expect((await rest(endpoints, 'PUT', `/sensors/${id}`, { json: { location: 's', temperature } })).status).toBe(
        204,
      );
    await write(0);
    const open = (query = '') =>
      Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          i % 2
            ? wsSubscriber(endpoints, `/sensors/${id}${query}`)
            : Promise.resolve(sseSubscriber(endpoints, `/sensors/${id}${query}`)),
        ),
      ) as Promise<Subscriber[]>;
    const clients = await open();
    await Promise.all(
      clients.map((client) => client.inbox.waitFor((item) => valueField(item, 'temperature') === 0, 15_000)),
    );
    const resumeFrom = clients.map((client) => client.inbox.items.at(-1)!.localTime!);
    await Promise.all(clients.map((client) => client.close()));

    for (let temperature = 1; temperature <= 20; temperature++) await write(temperature);

    const resumed = await Promise.all(
      clients.map((_, i) =>
        i % 2
          ? wsSubscriber(endpoints, `/sensors/${id}?startTime=${resumeFrom[i]}`)
          : Promise.resolve(sseSubscriber(endpoints, `/sensors/${id}?startTime=${resumeFrom[i]}`)),
      ),
    );
    try {
      await Promise.all(
        resumed.map((client) => client.inbox.waitFor((item) => valueField(item, 'temperature') === 20, 15_000)),
      );
      for (const client of resumed) {
        expect(client.inbox.items.map((item) => valueField(item, 'temperature'))).toEqual(
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      }
    } finally {
      await Promise.all(resumed.map((client) => client.close()));
    }
  }, 90_000);
});

describe('graceful shutdown', () => {
  it('SIGTERM while a publisher is writing loses nothing that was acknowledged', async () => {
    const mqtt = await connectMqtt(harper.endpoints, { protocolVersion: 5 });
    const acknowledged: number[] = [];
    const closed = new Promise<'closed'>((resolve) => mqtt.once('close', () => resolve('closed')));
    // Publish back to back until the server goes away; a publish in flight then never completes.
    const publishing = (async () => {
      for (let i = 1; ; i++) {
        const outcome = await Promise.race([
          mqtt
            .publishAsync('sensors/term-1', JSON.stringify({ location: 't', temperature: i }), { qos: 1, retain: true })
            .then(reasonCodeOf, () => -1),
          closed,
        ]);
        if (outcome === 'closed' || outcome === -1) return;
        if (outcome === 0) acknowledged.push(i);
      }
    })();
    await new Promise<void>((resolve) => {
      const check = setInterval(() => acknowledged.length >= 50 && (clearInterval(check), resolve()), 5);
    });
    const sentBeforeStop = acknowledged.length;
    await harper.instance.stop('SIGTERM');
    await publishing;
    mqtt.end(true);
    expect(sentBeforeStop).toBeGreaterThanOrEqual(50);

    harper = await startTestHarper({ dataDir: harper.dataDir, admin: harper.endpoints.admin });
    const history = await rest<{ temperature: number }[]>(
      harper.endpoints,
      'GET',
      '/readings/?sensorId=term-1&sort(time)&limit(100000)',
    );
    const stored = history.body.map((reading) => reading.temperature);
    for (const value of acknowledged) expect(stored).toContain(value);
  }, 90_000);
});

describe('keepalive under load', () => {
  it('clients with a 2 s keepalive stay connected while another client saturates the server for 6 s', async () => {
    // A short keepalive: mqtt.js closes the connection itself when a PINGRESP comes late.
    const dropped: string[] = [];
    const live = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const client = await connectMqttWithKeepalive(i);
        client.on('close', () => dropped.push(`watcher ${i}`));
        return client;
      }),
    );
    const flood = await connectMqtt(harper.endpoints, { protocolVersion: 5 });
    const until = Date.now() + 6000;
    let sent = 0;
    // Up to 100 QoS 1 publishes in flight, to 20 sensors, for 6 seconds.
    await Promise.all(
      Array.from({ length: 100 }, async (_, lane) => {
        while (Date.now() < until) {
          await flood.publishAsync(
            `sensors/flood-${lane % 20}`,
            JSON.stringify({ location: 'f', temperature: sent++ % 50 }),
            { qos: 1, retain: true },
          );
        }
      }),
    );
    await flood.endAsync();
    expect(sent).toBeGreaterThan(100);
    expect(dropped).toEqual([]);
    expect(live.every((client) => client.connected)).toBe(true);
    await Promise.all(live.map((client) => client.endAsync()));
  }, 60_000);
});

function connectMqttWithKeepalive(i: number) {
  return mqtt.connectAsync(harper.endpoints.mqttUrl, {
    username: harper.endpoints.admin.username,
    password: harper.endpoints.admin.password,
    clientId: `keepalive-${i}`,
    keepalive: 2,
    reconnectPeriod: 0,
  });
}
