/**
 * The `topics` catch-all: any topic or path no other resource owns is a record whose id is the
 * full topic. Retained publishes and REST PUTs are stored; non-retained publishes only fan out;
 * `#` and `+` subscriptions work across nested levels.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectMqtt, mqttSubscriber, reasonCodeOf } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { untilLive, type Received, type Subscriber } from './harness/inbox.js';

const harper = inject('harper');
const site = `site${Date.now().toString(36)}`;
let publisher: MqttClient;
let everything: Subscriber;
let singleLevel: Subscriber;

beforeAll(async () => {
  publisher = await connectMqtt(harper, { protocolVersion: 5 });
  everything = await mqttSubscriber(harper, `${site}/#`);
  singleLevel = await mqttSubscriber(harper, `${site}/+/status`);
});

afterAll(async () => {
  await everything.close();
  await singleLevel.close();
  await publisher.endAsync();
});

/**
 * Subscribers receive a topic exactly as it was published (MQTT §3.3.2.1): Harper 4.7 alone sent
 * catch-all topics with a leading slash ("/factory/line-1/status"); lib/mqtt/deliveries.ts
 * removes it.
 */
const delivered = (topic: string) => topic;
const on = (topic: string) => (item: Received) => item.topic === delivered(topic);

/** mosquitto_sub/mosquitto_pub options: the test Harper, as the admin, QoS 1, a client id of its own. */
function mosquittoConnection(client: string): string[] {
  const { port, hostname } = new URL(harper.mqttUrl);
  const { username, password } = harper.admin;
  return [
    '-h',
    hostname,
    '-p',
    port,
    '-u',
    username,
    '-P',
    password,
    '-i',
    `${username}.${client}-${process.pid}`,
    '-q',
    '1',
  ];
}

describe('topics catch-all', () => {
  it('delivers topics as published, without a leading slash, to mosquitto_sub and to MQTT 3.1.1 and 5 subscribers over TCP and WebSocket', async () => {
    const topic = `${site}/line-8/status`;
    const seen: Record<string, string[]> = { v4: [], v5: [], ws: [] };
    const clients = await Promise.all([
      connectMqtt(harper, { protocolVersion: 4, onMessage: (t) => seen.v4.push(t) }),
      connectMqtt(harper, { protocolVersion: 5, onMessage: (t) => seen.v5.push(t) }),
      connectMqtt(harper, { protocolVersion: 5, overWebSocket: true, onMessage: (t) => seen.ws.push(t) }),
    ]);
    // Line-buffered (stdbuf), as mosquitto_sub buffers its output when it is not a terminal.
    const sub = spawn('stdbuf', [
      '-oL',
      'mosquitto_sub',
      ...mosquittoConnection('topics'),
      '-t',
      `${site}/#`,
      '-v',
      '-d',
    ]);
    let output = '';
    sub.stdout.on('data', (chunk: Buffer) => (output += chunk));
    sub.stderr.on('data', (chunk: Buffer) => (output += chunk));
    try {
      for (const client of clients) await client.subscribeAsync(`${site}/#`, { qos: 1 });
      await expect.poll(() => output, { timeout: 5_000 }).toContain('SUBACK');
      await publisher.publishAsync(topic, JSON.stringify({ state: 'exact' }), { qos: 1 });
      await expect.poll(() => output, { timeout: 5_000 }).toContain(`\n${topic} {"state":"exact"}`);
      await expect
        .poll(() => [seen.v4, seen.v5, seen.ws].map((topics) => topics.includes(topic)), { timeout: 5_000 })
        .toEqual([true, true, true]);
      expect([...seen.v4, ...seen.v5, ...seen.ws].filter((t) => t.startsWith('/'))).toEqual([]);
    } finally {
      sub.kill();
      for (const client of clients) await client.endAsync();
    }
  });

  it('stores a retained publish under its full topic and fans it out to # and + subscribers', async () => {
    const topic = `${site}/line-1/status`;
    await publisher.publishAsync(topic, JSON.stringify({ state: 'running', speed: 12 }), { qos: 1, retain: true });
    const [all, plus] = await Promise.all([everything.inbox.waitFor(on(topic)), singleLevel.inbox.waitFor(on(topic))]);
    expect(all.value).toEqual({ id: topic, state: 'running', speed: 12 });
    expect(plus.value).toEqual(all.value);
    const stored = await rest(harper, 'GET', `/${topic}`);
    expect(stored.status).toBe(200);
    expect(stored.body).toEqual({ id: topic, state: 'running', speed: 12 });
  });

  it('fans out a non-retained publish without storing it', async () => {
    const topic = `${site}/line-2/status`;
    await publisher.publishAsync(topic, JSON.stringify({ state: 'stopped' }), { qos: 1 });
    const [all, plus] = await Promise.all([everything.inbox.waitFor(on(topic)), singleLevel.inbox.waitFor(on(topic))]);
    expect(all.value).toEqual({ state: 'stopped' });
    expect(plus.value).toEqual(all.value);
    expect((await rest(harper, 'GET', `/${topic}`)).status).toBe(404);
  });

  it('matches + to exactly one level: deeper topics reach # but not +', async () => {
    const deep = `${site}/line-3/cell-2/status`;
    const marker = `${site}/line-9/status`;
    await publisher.publishAsync(deep, JSON.stringify({ state: 'deep' }), { qos: 1 });
    await publisher.publishAsync(marker, JSON.stringify({ state: 'marker' }), { qos: 1 });
    await everything.inbox.waitFor(on(deep));
    // The marker was published after the deep topic; once it has arrived, the deep one would have.
    await singleLevel.inbox.waitFor(on(marker));
    expect(singleLevel.inbox.filter(on(deep))).toEqual([]);
  });

  it('takes REST writes on any path and MQTT subscribers see them', async () => {
    const topic = `${site}/line-4/status`;
    const put = await rest(harper, 'PUT', `/${topic}`, { json: { state: 'maintenance' } });
    expect(put.status).toBe(204);
    const received = await everything.inbox.waitFor(on(topic));
    expect(received.value).toEqual({ id: topic, state: 'maintenance' });
  });

  it('streams a catch-all record over SSE', async () => {
    const topic = `${site}/line-5/status`;
    const sse = sseSubscriber(harper, `/${topic}`);
    try {
      // Live once a non-retained canary reaches it; then a retained publish arrives as a put.
      await untilLive(
        [sse],
        () => publisher.publishAsync(topic, JSON.stringify({ canary: true }), { qos: 1 }),
        (item) => item.type === 'message',
      );
      await publisher.publishAsync(topic, JSON.stringify({ state: 'idle' }), { qos: 1, retain: true });
      const put = await sse.inbox.waitFor((item) => item.type === 'put');
      expect(put.value).toEqual({ id: topic, state: 'idle' });
    } finally {
      await sse.close();
    }
  });

  it('keeps scalar payloads (LED-sign style per-field topics) as they were sent', async () => {
    const topic = `${site}/led-sign/2FE598/message`;
    await publisher.publishAsync(topic, 'Hello', { qos: 1, retain: true });
    expect((await everything.inbox.waitFor(on(topic))).value).toBe('Hello');
    const stored = await rest(harper, 'GET', `/${topic}`);
    expect(stored.status).toBe(200);
    expect(stored.body).toBe('Hello');
  });

  it('deletes a retained topic on an empty retained publish', async () => {
    const topic = `${site}/line-6/status`;
    await publisher.publishAsync(topic, JSON.stringify({ state: 'temporary' }), { qos: 1, retain: true });
    expect((await rest(harper, 'GET', `/${topic}`)).status).toBe(200);
    await publisher.publishAsync(topic, '', { qos: 1, retain: true });
    await everything.inbox.waitFor((item) => on(topic)(item) && item.value === null);
    expect((await rest(harper, 'GET', `/${topic}`)).status).toBe(404);
  });

  it('delivers an empty non-retained publish (mosquitto_pub -n, MQTT 3.1.1 and 5) as an empty message to MQTT 3.1.1, MQTT 5 and SSE subscribers, stored nowhere', async () => {
    const topic = `${site}/line-7/trigger`;
    const raw = (protocolVersion: 4 | 5) => {
      const seen: Buffer[] = [];
      return {
        seen,
        client: connectMqtt(harper, {
          protocolVersion,
          onMessage: (t, payload) => t === delivered(topic) && seen.push(payload),
        }),
      };
    };
    const v4 = raw(4);
    const v5 = raw(5);
    const clients = await Promise.all([v4.client, v5.client]);
    const sse = sseSubscriber(harper, `/${topic}`);
    try {
      for (const client of clients) await client.subscribeAsync(topic, { qos: 1 });
      await untilLive(
        [sse],
        () => publisher.publishAsync(topic, JSON.stringify({ canary: true }), { qos: 1 }),
        (item) => item.type === 'message',
      );
      // The standard client, MQTT 3.1.1, QoS 1, no payload.
      await promisify(execFile)('mosquitto_pub', [...mosquittoConnection('empty'), '-t', topic, '-n']);
      // MQTT 5 with QoS 1: the PUBACK reports success.
      expect(reasonCodeOf(await publisher.publishAsync(topic, '', { qos: 1 }))).toBe(0);
      await publisher.publishAsync(topic, JSON.stringify({ after: true }), { qos: 1 });
      for (const { seen } of [v4, v5]) {
        await expect.poll(() => seen.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(4);
        expect(seen.slice(-3).map((payload) => payload.toString())).toEqual(['', '', '{"after":true}']);
      }
      const messages = await sse.inbox
        .waitFor((item) => item.type === 'message' && (item.value as { after?: boolean } | null)?.after === true)
        .then(() => sse.inbox.filter((item) => item.type === 'message'));
      expect(messages.slice(-3).map((item) => item.value)).toEqual([
        { contentType: 'application/octet-stream', data: { type: 'Buffer', data: [] } },
        { contentType: 'application/octet-stream', data: { type: 'Buffer', data: [] } },
        { after: true },
      ]);
      expect((await rest(harper, 'GET', `/${topic}`)).status).toBe(404);
    } finally {
      await sse.close();
      for (const client of clients) await client.endAsync();
    }
  });
});
