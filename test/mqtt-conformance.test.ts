/**
 * MQTT as the specifications say it, where Harper 4.7 alone differs and our component corrects
 * it (the topic names of deliveries and empty messages are in test/topics.test.ts). Spoken on a
 * raw socket where client libraries refuse to send what the rule is about.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type IPublishPacket } from 'mqtt';
import mqttPacket, { type IConnackPacket, type Packet } from 'mqtt-packet';
import { describe, expect, inject, it } from 'vitest';
import { connectMqtt } from './harness/mqtt.js';

const harper = inject('harper');

/** Sends one CONNECT and resolves with the server's answer (CONNACK). */
function connectRaw(packet: Record<string, unknown>, protocolVersion: 4 | 5): Promise<IConnackPacket> {
  const { hostname, port } = new URL(harper.mqttUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const parser = mqttPacket.parser({ protocolVersion });
    parser.on('packet', (answer: Packet) => {
      socket.destroy();
      if (answer.cmd === 'connack') resolve(answer as IConnackPacket);
      else reject(new Error(`expected CONNACK, got ${answer.cmd}`));
    });
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => reject(new Error('no CONNACK within 5 s')));
    socket.write(connectBytes(packet, protocolVersion));
  });
}

/**
 * A CONNECT as bytes. mqtt-packet (like every client library) refuses to encode an empty client
 * id without a clean session, so that one is encoded with a clean session and its flag cleared.
 */
function connectBytes(packet: Record<string, unknown>, protocolVersion: 4 | 5): Buffer {
  const unclean = packet.clientId === '' && packet.clean === false;
  const bytes = mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion,
    keepalive: 30,
    username: harper.admin.username,
    password: Buffer.from(harper.admin.password),
    ...packet,
    ...(unclean ? { clean: true } : {}),
  } as Packet);
  if (unclean) {
    let at = 1;
    while (bytes[at] & 0x80) at++; // the remaining length's bytes
    const flags = at + 1 + 2 + 4 + 1; // after the protocol name "MQTT" and level
    bytes[flags] &= ~0x02; // Clean Session (3.1.1) / Clean Start (5) off
  }
  return bytes;
}

describe('MQTT 3.1.1 §3.1.3: client identifier', () => {
  it('refuses an empty client id without a clean session with CONNACK 0x02 (MQTT-3.1.3-8)', async () => {
    const answer = await connectRaw({ clientId: '', clean: false }, 4);
    expect(answer.returnCode).toBe(2);
  });

  it('accepts an empty client id with a clean session (MQTT-3.1.3-6), and a named durable session', async () => {
    expect((await connectRaw({ clientId: '', clean: true }, 4)).returnCode).toBe(0);
    expect(
      (await connectRaw({ clientId: `${harper.admin.username}.durable-${process.pid}`, clean: false }, 4)).returnCode,
    ).toBe(0);
  });

  it('MQTT 5 takes an empty client id with clean start off (the server assigns one)', async () => {
    expect((await connectRaw({ clientId: '', clean: false }, 5)).reasonCode).toBe(0);
  });
});

describe('MQTT §4.4: message delivery retry', () => {
  it('delivers unacknowledged QoS 1 messages again, in order, when a durable session resumes (empty payloads included)', async () => {
    const topic = `retry${Date.now().toString(36)}`;
    const clientId = `${harper.admin.username}.retry-${process.pid}`;
    // MQTT 5, so that mqtt.js lets the test withhold PUBACKs (customHandleAcks).
    const first = await connectMqtt(harper, { protocolVersion: 5, clientId, clean: false });
    (first.options as { customHandleAcks?: unknown }).customHandleAcks = () => undefined; // never acknowledge
    await first.subscribeAsync(`${topic}/#`, { qos: 1 });
    const publisher = await connectMqtt(harper);
    const sent = ['one', '', 'three'];
    for (const payload of sent) await publisher.publishAsync(`${topic}/events`, payload, { qos: 1 });
    await publisher.endAsync();
    first.stream.destroy(); // gone without acknowledging anything

    const redelivered: { payload: string; dup: boolean }[] = [];
    const resumed = await connectMqtt(harper, {
      protocolVersion: 5,
      clientId,
      clean: false,
      onMessage: (_topic, payload, packet) => redelivered.push({ payload: payload.toString(), dup: packet.dup }),
    });
    try {
      await expect.poll(() => redelivered.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(sent.length);
      expect(redelivered.map((message) => message.payload)).toEqual(sent);
      // MQTT-3.3.1-1 wants DUP=1 on a re-delivery; Harper 4.7 sends them as new deliveries. Pinned,
      // so that a Harper upgrade that sets it is noticed (and the README table updated).
      expect(redelivered.map((message) => message.dup)).toEqual(sent.map(() => false));
    } finally {
      await resumed.endAsync();
    }
  });
});

describe('MQTT §3.3.1.3: RETAIN on delivery', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: the state sent on subscribe has RETAIN=1 (MQTT-3.3.1-8), live changes RETAIN=0 (MQTT-3.3.1-9), for a record, a wildcard and a catch-all topic`, async () => {
      const run = `rt${protocolVersion}${Date.now().toString(36)}`;
      const sensor = `sensors/${run}-a`;
      const topic = `${run}/status`;
      const publisher = await connectMqtt(harper);
      await publisher.publishAsync(sensor, JSON.stringify({ location: 'lab', temperature: 1 }), {
        qos: 1,
        retain: true,
      });
      await publisher.publishAsync(topic, JSON.stringify({ state: 'on' }), { qos: 1, retain: true });
      const seen: { filter: string; topic: string; retain: boolean; body: unknown }[] = [];
      const subscribe = async (filter: string) => {
        const client = await connectMqtt(harper, { protocolVersion });
        client.on('message', (at, payload, packet: IPublishPacket) => {
          if (at === sensor || at === topic)
            seen.push({ filter, topic: at, retain: packet.retain, body: JSON.parse(payload.toString()) });
        });
        await client.subscribeAsync(filter, { qos: 1 });
        return client;
      };
      // sensors/# sends every sensor's state first: only this run's sensor is looked at.
      const clients = [await subscribe(sensor), await subscribe('sensors/#'), await subscribe(topic)];
      const of = (filter: string) =>
        seen.filter((message) => message.filter === filter).map((message) => [message.retain, message.body]);
      try {
        await expect.poll(() => seen.length, { timeout: 5_000 }).toBe(3);
        await publisher.publishAsync(sensor, JSON.stringify({ location: 'lab', temperature: 2 }), {
          qos: 1,
          retain: true,
        });
        await publisher.publishAsync(topic, JSON.stringify({ state: 'off' }), { qos: 1, retain: true });
        await expect.poll(() => seen.length, { timeout: 5_000 }).toBe(6);
        for (const filter of [sensor, 'sensors/#']) {
          expect(of(filter)).toEqual([
            [true, expect.objectContaining({ temperature: 1 })],
            [false, expect.objectContaining({ temperature: 2 })],
          ]);
        }
        expect(of(topic)).toEqual([
          [true, { id: topic, state: 'on' }],
          [false, { id: topic, state: 'off' }],
        ]);
      } finally {
        for (const client of clients) await client.endAsync();
        await publisher.endAsync();
      }
    });
  }

  it('a wildcard subscription in the catch-all gets no retained messages on subscribe (Harper 4.7; pinned), only live ones', async () => {
    const run = `rw${Date.now().toString(36)}`;
    const publisher = await connectMqtt(harper);
    await publisher.publishAsync(`${run}/line-1/status`, JSON.stringify({ state: 'on' }), { qos: 1, retain: true });
    const seen: string[] = [];
    const client = await connectMqtt(harper, { onMessage: (_topic, payload) => seen.push(payload.toString()) });
    try {
      await client.subscribeAsync(`${run}/#`, { qos: 1 });
      await publisher.publishAsync(`${run}/line-1/status`, JSON.stringify({ state: 'live' }), { qos: 1, retain: true });
      await expect
        .poll(() => seen, { timeout: 5_000 })
        .toContain(JSON.stringify({ state: 'live', id: `${run}/line-1/status` }));
      expect(seen.some((body) => body.includes('"on"'))).toBe(false);
    } finally {
      await client.endAsync();
      await publisher.endAsync();
    }
  });
});

describe('with Eclipse Paho (Python)', () => {
  for (const version of ['3', '5'] as const) {
    it(`MQTT ${version === '3' ? '3.1.1' : '5'}: a catch-all wildcard subscriber gets topics as published and empty messages as empty`, async () => {
      const run = `paho${version}${Date.now().toString(36)}`;
      const { hostname, port } = new URL(harper.mqttUrl);
      // Debian's Python (the package python3-paho-mqtt installs into it), whatever python3 is first on PATH.
      const { stdout } = await promisify(execFile)('/usr/bin/python3', [
        join(import.meta.dirname, 'clients', 'paho_client.py'),
        hostname,
        port,
        harper.admin.username,
        harper.admin.password,
        `${harper.admin.username}.paho-${version}-${process.pid}`,
        version,
        `${run}/#`,
        `${run}/line-1/trigger`,
        '{"n":1}',
        '',
        '{"n":3}',
      ]);
      const received = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { topic: string; payload: string; retain: boolean });
      expect(received).toEqual([
        { topic: `${run}/line-1/trigger`, payload: '{"n":1}', retain: false },
        { topic: `${run}/line-1/trigger`, payload: '', retain: false },
        { topic: `${run}/line-1/trigger`, payload: '{"n":3}', retain: false },
      ]);
    });
  }
});

/**
 * MQTT 5 features Harper 4.7's broker does not implement and a component cannot add (they need
 * the broker's own session and routing state). Each test pins what happens today, so that a Harper
 * upgrade that changes it is noticed and the README's conformance table updated.
 */
describe('MQTT 5 features not supported by Harper 4.7 (pinned)', () => {
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const topicOf = (name: string) => `mq5${name}${Date.now().toString(36)}/t`;

  it('no-local: a client still receives its own publishes', async () => {
    const topic = topicOf('nl');
    const got: string[] = [];
    const client = await connectMqtt(harper, { onMessage: (at) => got.push(at) });
    try {
      await client.subscribeAsync(topic, { qos: 1, nl: true });
      await client.publishAsync(topic, '{"x":1}', { qos: 1 });
      await expect.poll(() => got, { timeout: 5_000 }).toEqual([topic]);
    } finally {
      await client.endAsync();
    }
  });

  it('retain-as-published: a live retained publish arrives with RETAIN=0', async () => {
    const topic = topicOf('rap');
    const flags: boolean[] = [];
    const subscriber = await connectMqtt(harper);
    subscriber.on('message', (_at, _payload, packet: IPublishPacket) => flags.push(packet.retain));
    const publisher = await connectMqtt(harper);
    try {
      await subscriber.subscribeAsync(topic, { qos: 1, rap: true });
      await publisher.publishAsync(topic, '{"x":1}', { qos: 1, retain: true });
      await expect.poll(() => flags, { timeout: 5_000 }).toEqual([false]);
    } finally {
      await subscriber.endAsync();
      await publisher.endAsync();
    }
  });

  it('user properties, response topic, correlation data and subscription identifiers are not passed on', async () => {
    const topic = topicOf('props');
    const received: (IPublishPacket['properties'] | null)[] = [];
    const subscriber = await connectMqtt(harper);
    subscriber.on('message', (_at, _payload, packet: IPublishPacket) => received.push(packet.properties ?? null));
    const publisher = await connectMqtt(harper);
    try {
      await subscriber.subscribeAsync(topic, { qos: 1, properties: { subscriptionIdentifier: 7 } });
      await publisher.publishAsync(topic, '{"x":1}', {
        qos: 1,
        properties: {
          userProperties: { k: 'v' },
          responseTopic: `${topic}/reply`,
          correlationData: Buffer.from('abc'),
        },
      });
      await expect.poll(() => received, { timeout: 5_000 }).toEqual([null]);
    } finally {
      await subscriber.endAsync();
      await publisher.endAsync();
    }
  });

  it('message expiry: an expired message is still delivered to a durable session that comes back', async () => {
    const topic = topicOf('exp');
    const clientId = `${harper.admin.username}.expiry-${process.pid}`;
    const first = await connectMqtt(harper, { clientId, clean: false });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    const publisher = await connectMqtt(harper);
    await publisher.publishAsync(topic, '{"x":1}', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await publisher.endAsync();
    await wait(2_000); // past its expiry
    const got: string[] = [];
    const resumed = await connectMqtt(harper, {
      clientId,
      clean: false,
      onMessage: (_at, payload) => got.push(payload.toString()),
    });
    try {
      await expect.poll(() => got, { timeout: 5_000 }).toEqual(['{"x":1}']);
    } finally {
      await resumed.endAsync();
    }
  });

  it('assigned client identifier and topic aliases: CONNACK assigns no identifier to an empty one and announces no Topic Alias Maximum', async () => {
    const client = await mqtt.connectAsync(harper.mqttUrl, {
      username: harper.admin.username,
      password: harper.admin.password,
      clientId: '',
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    try {
      const properties = (
        client as unknown as {
          connackPacket?: { properties?: { assignedClientIdentifier?: string; topicAliasMaximum?: number } };
        }
      ).connackPacket?.properties;
      expect({ assigned: properties?.assignedClientIdentifier, aliases: properties?.topicAliasMaximum }).toEqual({
        assigned: undefined,
        aliases: undefined,
      });
    } finally {
      await client.endAsync();
    }
  });

  it('receive maximum: a client that allows 1 unacknowledged message is sent more', async () => {
    const topic = topicOf('rm');
    const { hostname, port } = new URL(harper.mqttUrl);
    const socket = connect({ host: hostname, port: Number(port) });
    const connected = new Promise((resolve) => socket.once('connect', resolve));
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const packets: Packet[] = [];
    parser.on('packet', (packet: Packet) => packets.push(packet));
    socket.on('data', (chunk) => parser.parse(chunk));
    const send = (packet: Record<string, unknown>) =>
      socket.write(mqttPacket.generate(packet as unknown as Packet, { protocolVersion: 5 }));
    const publisher = await connectMqtt(harper);
    try {
      await connected;
      send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clean: true,
        keepalive: 30,
        clientId: `${harper.admin.username}.rm-${process.pid}`,
        username: harper.admin.username,
        password: Buffer.from(harper.admin.password),
        properties: { receiveMaximum: 1 },
      });
      await expect.poll(() => packets.some((packet) => packet.cmd === 'connack'), { timeout: 5_000 }).toBe(true);
      send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      await expect.poll(() => packets.some((packet) => packet.cmd === 'suback'), { timeout: 5_000 }).toBe(true);
      for (let i = 0; i < 5; i++) await publisher.publishAsync(topic, `{"i":${i}}`, { qos: 1 });
      // None is acknowledged: MQTT 5 §4.9 allows 1 in flight; Harper sends them all.
      await expect.poll(() => packets.filter((packet) => packet.cmd === 'publish').length, { timeout: 5_000 }).toBe(5);
    } finally {
      socket.destroy();
      await publisher.endAsync();
    }
  });

  it('will delay: the will is published at once when the connection drops, not after its delay', async () => {
    const topic = topicOf('will');
    const at: number[] = [];
    const watcher = await connectMqtt(harper, { onMessage: () => at.push(Date.now()) });
    await watcher.subscribeAsync(topic, { qos: 1 });
    const dying = await mqtt.connectAsync(harper.mqttUrl, {
      username: harper.admin.username,
      password: harper.admin.password,
      clientId: `${harper.admin.username}.will-${process.pid}`,
      protocolVersion: 5,
      reconnectPeriod: 0,
      will: {
        topic,
        payload: Buffer.from('{"gone":true}'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 30 },
      },
    });
    // Harper stores the will without waiting for the write, and a connection dropped at once
    // finds none: give it a moment (there is no event to wait for).
    await new Promise((resolve) => setTimeout(resolve, 500));
    const gone = Date.now();
    dying.stream.destroy();
    try {
      await expect.poll(() => at.length, { timeout: 10_000 }).toBe(1);
      expect(at[0] - gone).toBeLessThan(10_000); // well before the 30 s delay
    } finally {
      await watcher.endAsync();
    }
  });
});
