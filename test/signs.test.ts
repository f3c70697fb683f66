/**
 * The LED sign: signs/<id> validated on every protocol and covered by the roles; the sign as a
 * device twin (operators change desired, its device reports, pending until they match, on every
 * protocol, also for a device that was offline); the LED-sign demo's per-field topics
 * (led-sign/<id>/message, brightness, power, color; scalar payloads) carrying desired to devices
 * and their reports back, without loops or echoes; cookie sessions for the dashboard.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectMqtt, mqttSubscriber } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import { createUser } from './harness/users.js';
import { untilLive, valueField, type Received, type Subscriber } from './harness/inbox.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

const harper = inject('harper');
const run = Date.now().toString(36);
const sign = `sign${run}`;
const full = { message: 'Hello', brightness: 7, power: 'on', color: '#00ff00' };
let operator: AdminCredentials;
let viewer: AdminCredentials;
let device: AdminCredentials;
let admin: MqttClient;

beforeAll(async () => {
  operator = await createUser(harper, 'operator', `${run}-op`);
  viewer = await createUser(harper, 'viewer', `${run}-viewer`);
  device = await createUser(harper, 'device', sign); // the sign device owns signs/<its name>
  admin = await connectMqtt(harper);
  expect((await rest(harper, 'PUT', `/signs/${sign}`, { json: full, auth: operator })).status).toBe(204);
});

afterAll(async () => {
  await admin.endAsync();
});

describe('signs', () => {
  it('stores the state with who wrote it and when', async () => {
    const stored = await rest<Record<string, unknown>>(harper, 'GET', `/signs/${sign}`, { auth: viewer });
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ id: sign, ...full, updatedBy: operator.username });
    expect(typeof stored.body.updatedAt).toBe('number');
  });

  it.each([
    [{ message: 'x'.repeat(65) }, 'message'],
    [{ message: 'tab\there' }, 'message'],
    [{ brightness: 16 }, 'brightness'],
    [{ brightness: 2.5 }, 'brightness'],
    [{ power: 'maybe' }, 'power'],
    [{ color: 'red' }, 'color'],
    [{ updatedBy: 'me' }, 'updatedBy'],
  ])('refuses %j over REST, MQTT 5 and per-field topics, storing nothing', async (patch, field) => {
    const response = await rest(harper, 'PATCH', `/signs/${sign}`, { json: patch, auth: operator });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ field });
    await expect(
      admin.publishAsync(`signs/${sign}`, JSON.stringify({ ...full, ...patch }), { qos: 1, retain: true }),
    ).rejects.toMatchObject({ code: 128 });
    const [key, value] = Object.entries(patch)[0];
    if (key !== 'updatedBy') {
      await expect(
        admin.publishAsync(`led-sign/${sign}/${key}`, String(value), { qos: 1, retain: true }),
      ).rejects.toMatchObject({ code: 128 });
    }
    expect((await rest(harper, 'GET', `/signs/${sign}`)).body).toMatchObject(full);
  });

  it('takes changes over WebSocket too: an ack for a good one, the same errors for bad ones, rights enforced', async () => {
    const socket = await wsSubscriber(harper, `/signs/${sign}`, { credentials: operator });
    const replies = () => socket.inbox.filter((item) => item.type === 'ack' || item.type === 'error');
    for (const message of [{ message: 'Over a socket' }, { brightness: 99 }, { colour: 'red' }]) {
      const before = replies().length;
      socket.send(message);
      await socket.inbox.waitFor(() => replies().length > before);
    }
    expect(
      replies().map((reply) => (reply.value as { type: string; error?: string; field?: string }).error ?? 'ack'),
    ).toEqual(['ack', 'invalid_field', 'unknown_field']);
    await socket.close();
    expect((await rest(harper, 'GET', `/signs/${sign}`)).body).toMatchObject({
      message: 'Over a socket',
      brightness: full.brightness,
    });
    const viewerSocket = await wsSubscriber(harper, `/signs/${sign}`, { credentials: viewer });
    viewerSocket.send({ message: 'nope' });
    const refused = await viewerSocket.inbox.waitFor((item) => item.type === 'error');
    expect(refused.value).toMatchObject({ error: 'forbidden' });
    await viewerSocket.close();
    expect(
      (await rest(harper, 'PATCH', `/signs/${sign}`, { json: { message: full.message }, auth: operator })).status,
    ).toBe(204);
  });

  it('follows the roles: operators write, viewers read, the device reads and reports its own sign only', async () => {
    const viewerWrite = await rest(harper, 'PATCH', `/signs/${sign}`, { json: { message: 'nope' }, auth: viewer });
    expect(viewerWrite.status).toBe(403);
    expect((await rest(harper, 'GET', `/signs/${sign}`, { auth: device })).status).toBe(200);
    const report = await rest(harper, 'PATCH', `/signs/${sign}`, { json: { power: 'off' }, auth: device });
    expect(report.status).toBe(204);
    // The device's write is a report: what it was asked to show stays as it was.
    expect((await rest(harper, 'GET', `/signs/${sign}`)).body).toMatchObject({
      power: 'on',
      updatedBy: operator.username,
      reported: { power: 'off' },
      reportedBy: sign,
    });
    const other = `other${run}`;
    expect((await rest(harper, 'PUT', `/signs/${other}`, { json: full })).status).toBe(204);
    expect((await rest(harper, 'GET', `/signs/${other}`, { auth: device })).status).toBe(403);
    expect((await rest(harper, 'PATCH', `/signs/${other}`, { json: { power: 'off' }, auth: device })).status).toBe(403);
    const deviceMqtt = await connectMqtt(harper, { credentials: device });
    await expect(
      deviceMqtt.publishAsync(`led-sign/${other}/message`, 'hijack', { qos: 1, retain: true }),
    ).rejects.toMatchObject({ code: 128 });
    const code = await deviceMqtt.subscribeAsync(`led-sign/${other}/message`, { qos: 1 }).then(
      (granted) => granted[0].qos,
      (error: { packet?: { granted?: number[] } }) => error.packet?.granted?.[0],
    );
    expect(code).toBe(135);
    await deviceMqtt.endAsync();
    expect((await rest(harper, 'PATCH', `/signs/${sign}`, { json: { power: 'on' }, auth: operator })).status).toBe(204);
  });
});

describe('the sign as a device twin: desired by operators, reported by its device', () => {
  const twin = `twin${run}`;
  let twinDevice: AdminCredentials;
  interface Twin {
    message?: string;
    updatedAt?: number;
    reported?: { message?: string };
    reportedAt?: number;
    reportedBy?: string;
    pending: string[];
    shownAt: number | null;
  }
  const twinOf = (item: Received) => item.value as Twin;

  beforeAll(async () => {
    twinDevice = await createUser(harper, 'device', twin);
  });

  it('a change is pending until the device reports showing it, and every protocol streams both sides', async () => {
    const sse = sseSubscriber(harper, `/signs/${twin}`, { credentials: viewer });
    const ws = await wsSubscriber(harper, `/signs/${twin}`, { credentials: viewer });
    const mqtt = await mqttSubscriber(harper, `signs/${twin}`, { credentials: operator });
    const perField = await mqttSubscriber(harper, `led-sign/${twin}/message`, { credentials: twinDevice });
    const signDevice = await mqttSubscriber(harper, `signs/${twin}`, { credentials: twinDevice });
    const streams = [sse, ws, mqtt, signDevice];
    try {
      let n = 0;
      await untilLive(
        [...streams, perField],
        () => rest(harper, 'PUT', `/signs/${twin}`, { json: { ...full, message: `canary ${++n}` }, auth: operator }),
        (item) =>
          String(item.topic?.startsWith('led-sign/') ? item.value : valueField(item, 'message')).startsWith('canary'),
      );
      // The operator's change: pending on every field the device has never reported.
      expect(
        (await rest(harper, 'PATCH', `/signs/${twin}`, { json: { message: 'Asked for' }, auth: operator })).status,
      ).toBe(204);
      for (const stream of streams) {
        const asked = twinOf(
          await stream.inbox.waitFor(
            (item) => valueField(item, 'message') === 'Asked for',
            5000,
            `${stream.name}: the change`,
          ),
        );
        expect(asked).toMatchObject({
          message: 'Asked for',
          pending: ['message', 'brightness', 'power', 'color'],
          shownAt: null,
        });
        expect(asked.reported).toBeUndefined();
      }
      await perField.inbox.waitFor(
        (item) => item.value === 'Asked for',
        5000,
        'the desired message on the per-field topic',
      );

      // The device reports its whole state (a retained publish of the sign's JSON): in step.
      await signDevice.client.publishAsync(`signs/${twin}`, JSON.stringify({ ...full, message: 'Asked for' }), {
        qos: 1,
        retain: true,
      });
      for (const stream of streams) {
        const shown = twinOf(
          await stream.inbox.waitFor(
            (item) => twinOf(item)?.reported?.message === 'Asked for',
            5000,
            `${stream.name}: the report`,
          ),
        );
        expect(shown).toMatchObject({ message: 'Asked for', pending: [], reportedBy: twin });
        expect(shown.shownAt).toBeGreaterThanOrEqual(shown.updatedAt!);
        expect(shown.reportedAt).toBe(shown.shownAt);
      }

      // Another change, reported on the per-field topic as a device speaking only those would.
      expect(
        (await rest(harper, 'PATCH', `/signs/${twin}`, { json: { message: 'Second' }, auth: operator })).status,
      ).toBe(204);
      const pending = twinOf(await mqtt.inbox.waitFor((item) => valueField(item, 'message') === 'Second'));
      expect(pending).toMatchObject({ pending: ['message'], shownAt: null, reported: { message: 'Asked for' } });
      await perField.inbox.waitFor((item) => item.value === 'Second');
      await perField.client.publishAsync(`led-sign/${twin}/message`, 'Second', { qos: 1 });
      const shown = twinOf(await mqtt.inbox.waitFor((item) => twinOf(item)?.reported?.message === 'Second'));
      expect(shown).toMatchObject({ message: 'Second', pending: [] });
      expect(shown.shownAt).toBeGreaterThanOrEqual(pending.updatedAt!);
      // The report reached nobody on the per-field topic: only desired values are published there.
      expect(perField.inbox.items.filter((item) => item.value === 'Second')).toHaveLength(1);
      expect((await rest<Twin>(harper, 'GET', `/signs/${twin}`)).body).toMatchObject({
        message: 'Second',
        reported: { message: 'Second' },
        pending: [],
      });
    } finally {
      await Promise.all([sse.close(), ws.close(), mqtt.close(), perField.close(), signDevice.close()]);
    }
  });

  it('a device offline while its sign changes catches up when it comes back, over signs/<id> and over the per-field topics', async () => {
    // Nothing of the device is connected now.
    expect(
      (
        await rest(harper, 'PATCH', `/signs/${twin}`, {
          json: { message: 'While away', brightness: 3 },
          auth: operator,
        })
      ).status,
    ).toBe(204);
    expect((await rest<Twin>(harper, 'GET', `/signs/${twin}`)).body).toMatchObject({
      message: 'While away',
      pending: ['message', 'brightness'],
      shownAt: null,
    });

    // Back: the subscription's first message is the current twin, with what is pending.
    const back = await mqttSubscriber(harper, `signs/${twin}`, { credentials: twinDevice });
    try {
      const current = twinOf(await back.inbox.waitFor(() => true, 5000, 'the current state on subscribing'));
      expect(current).toMatchObject({ message: 'While away', brightness: 3, pending: ['message', 'brightness'] });
      await back.client.publishAsync(
        `signs/${twin}`,
        JSON.stringify({ ...full, message: 'While away', brightness: 3 }),
        { qos: 1, retain: true },
      );
      await back.inbox.waitFor(
        (item) => twinOf(item)?.reported?.message === 'While away' && twinOf(item).pending.length === 0,
        5000,
        'in step',
      );
    } finally {
      await back.close();
    }

    // A device speaking only the per-field topics finds the desired value retained there.
    expect(
      (await rest(harper, 'PATCH', `/signs/${twin}`, { json: { message: 'While away again' }, auth: operator })).status,
    ).toBe(204);
    const perField = await mqttSubscriber(harper, `led-sign/${twin}/message`, { credentials: twinDevice });
    try {
      const retained = await perField.inbox.waitFor(() => true, 5000, 'the retained desired message');
      expect(retained.value).toBe('While away again');
      await perField.client.publishAsync(`led-sign/${twin}/message`, 'While away again', { qos: 1, retain: true });
    } finally {
      await perField.close();
    }
    const caughtUp = (await rest<Twin>(harper, 'GET', `/signs/${twin}`)).body;
    expect(caughtUp).toMatchObject({
      message: 'While away again',
      reported: { message: 'While away again' },
      pending: [],
    });
    expect(caughtUp.shownAt).toBeGreaterThanOrEqual(caughtUp.updatedAt!);
  });

  it('a device reporting its four fields at once, without waiting, keeps all four', async () => {
    const perField = await connectMqtt(harper, { credentials: twinDevice });
    try {
      const report = { message: 'All at once', brightness: '2', power: 'off', color: '#abcdef' };
      await Promise.all(
        Object.entries(report).map(([field, value]) =>
          perField.publishAsync(`led-sign/${twin}/${field}`, value, { qos: 1 }),
        ),
      );
    } finally {
      await perField.endAsync();
    }
    expect((await rest<Twin>(harper, 'GET', `/signs/${twin}`)).body.reported).toEqual({
      message: 'All at once',
      brightness: 2,
      power: 'off',
      color: '#abcdef',
    });
  });
});

describe('a device owns its own sign only, not the signs nested under its name', () => {
  it('device X may not write sign X/Y through led-sign/X/Y/<field> (MQTT, REST) nor signs/X/Y', async () => {
    const nested = `${sign}/lobby`;
    expect((await rest(harper, 'PUT', `/signs/${nested}`, { json: full, auth: operator })).status).toBe(204);
    const deviceMqtt = await connectMqtt(harper, { credentials: device });
    await expect(
      deviceMqtt.publishAsync(`led-sign/${nested}/message`, 'hijack', { qos: 1, retain: true }),
    ).rejects.toMatchObject({ code: 128 });
    await expect(deviceMqtt.publishAsync(`led-sign/${nested}/power`, 'off', { qos: 1 })).rejects.toMatchObject({
      code: 128,
    });
    await deviceMqtt.endAsync();
    const put = await rest(harper, 'PUT', `/led-sign/${nested}/message`, {
      body: 'hijack',
      headers: { 'content-type': 'text/plain' },
      auth: device,
    });
    expect(put.status).toBe(403);
    expect(
      (await rest(harper, 'PATCH', `/signs/${nested}`, { json: { message: 'hijack' }, auth: device })).status,
    ).toBe(403);
    expect((await rest(harper, 'GET', `/signs/${nested}`)).body).toMatchObject({ message: full.message, power: 'on' });
    // Its own sign's fields still work.
    const ownMqtt = await connectMqtt(harper, { credentials: device });
    await ownMqtt.publishAsync(`led-sign/${sign}/brightness`, String(full.brightness), { qos: 1, retain: true });
    await ownMqtt.endAsync();
  });
});

describe('per-field topics (the LED-sign demo) stay in step with signs/<id>, both ways', () => {
  let fields: Subscriber;
  let signStream: Subscriber;

  beforeAll(async () => {
    fields = await mqttSubscriber(harper, `led-sign/${sign}/+`, { credentials: device });
    signStream = sseSubscriber(harper, `/signs/${sign}`, { credentials: viewer });
    // Live once a change of the sign has reached both.
    let n = 0;
    await untilLive(
      [fields, signStream],
      () => rest(harper, 'PATCH', `/signs/${sign}`, { json: { message: `canary ${++n}` }, auth: operator }),
      (item) => String(item.topic ? item.value : valueField(item, 'message')).startsWith('canary'),
    );
  });

  afterAll(async () => {
    await fields.close();
    await signStream.close();
  });

  it('a UI change reaches a per-field device as a bare scalar on the changed field only', async () => {
    const before = fields.inbox.items.length;
    expect(
      (
        await rest(harper, 'PATCH', `/signs/${sign}`, {
          json: { message: 'From the UI', brightness: 3 },
          auth: operator,
        })
      ).status,
    ).toBe(204);
    const message = await fields.inbox.waitFor(
      (item) => item.topic === `led-sign/${sign}/message` && item.value === 'From the UI',
    );
    const brightness = await fields.inbox.waitFor(
      (item) => item.topic === `led-sign/${sign}/brightness` && item.value === 3,
    );
    expect([message.value, brightness.value]).toEqual(['From the UI', 3]);
    // power and color did not change, so nothing was published for them.
    const after = fields.inbox.items.slice(before).map((item) => item.topic);
    expect(after.filter((topic) => topic?.endsWith('/power') || topic?.endsWith('/color'))).toEqual([]);
  });

  it('a per-field report by the device updates what the sign reports, once, and is not published back on the topic', async () => {
    const deviceMqtt = await connectMqtt(harper, { credentials: device });
    const fieldsBefore = fields.inbox.items.length;
    const signBefore = signStream.inbox.items.length;
    const desired = (await rest<{ message: string }>(harper, 'GET', `/signs/${sign}`)).body.message;
    await deviceMqtt.publishAsync(`led-sign/${sign}/message`, 'Hello from the sign', { qos: 1, retain: true });
    const reported = (item: Received) => (valueField(item, 'reported') as { message?: string } | undefined)?.message;
    await signStream.inbox.waitFor((item) => reported(item) === 'Hello from the sign');
    const stored = (await rest<Record<string, unknown>>(harper, 'GET', `/signs/${sign}`)).body;
    expect(stored).toMatchObject({ message: desired, reported: { message: 'Hello from the sign' }, reportedBy: sign });
    expect(stored.pending).toContain('message');
    // The topic's retained value is still what the sign should show.
    expect((await rest(harper, 'GET', `/led-sign/${sign}/message`)).text).toBe(desired);
    // The same report again changes nothing and is not stored again.
    await deviceMqtt.publishAsync(`led-sign/${sign}/message`, 'Hello from the sign', { qos: 1 });
    // A later, unrelated change marks the end: by then any echo would have arrived.
    await rest(harper, 'PATCH', `/signs/${sign}`, { json: { color: '#123456' }, auth: operator });
    await fields.inbox.waitFor((item) => item.topic === `led-sign/${sign}/color`);
    await signStream.inbox.waitFor((item) => valueField(item, 'color') === '#123456');
    const fieldEvents = fields.inbox.items.slice(fieldsBefore).map((item) => `${item.topic} ${String(item.value)}`);
    expect(fieldEvents).toEqual([`led-sign/${sign}/color #123456`]);
    expect(
      signStream.inbox.items.slice(signBefore).map((item) => `${reported(item)}/${String(valueField(item, 'color'))}`),
    ).toEqual(['Hello from the sign/#00ff00', 'Hello from the sign/#123456']);
    await deviceMqtt.endAsync();
  });

  it('takes numeric and text scalars for brightness and power; a repeated value writes nothing', async () => {
    const signBefore = signStream.inbox.items.length;
    await admin.publishAsync(`led-sign/${sign}/brightness`, '12', { qos: 1 });
    await admin.publishAsync(`led-sign/${sign}/power`, 'off', { qos: 1 });
    const off = await signStream.inbox.waitFor((item) => valueField(item, 'power') === 'off');
    await admin.publishAsync(`led-sign/${sign}/power`, 'off', { qos: 1 }); // same value again
    await rest(harper, 'PATCH', `/signs/${sign}`, { json: { power: 'on' }, auth: operator });
    const items = signStream.inbox.items;
    await signStream.inbox.waitFor(
      (item) => items.indexOf(item) > items.indexOf(off) && valueField(item, 'power') === 'on',
    );
    const powers = signStream.inbox.items
      .slice(signBefore)
      .map((item) => `${valueField(item, 'brightness')}/${valueField(item, 'power')}`);
    expect(powers).toEqual(['12/on', '12/off', '12/on']);
  });
});

describe('dashboard sessions', () => {
  it('logs in with a cookie that authenticates REST and SSE; logs out', async () => {
    const login = await fetch(`${harper.httpUrl}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(operator),
    });
    expect(login.status).toBe(200);
    expect(await login.json()).toEqual({ username: operator.username, role: 'operator' });
    const cookie = login.headers
      .getSetCookie()
      .map((value) => value.split(';')[0])
      .join('; ');
    expect(cookie).not.toBe('');
    const me = await fetch(`${harper.httpUrl}/login`, { headers: { cookie } });
    expect(await me.json()).toEqual({ username: operator.username, role: 'operator' });
    const state = await fetch(`${harper.httpUrl}/signs/${sign}`, { headers: { cookie } });
    expect(state.status).toBe(200);
    await state.arrayBuffer();
    const stream = await fetch(`${harper.httpUrl}/signs/${sign}`, { headers: { cookie, accept: 'text/event-stream' } });
    expect(stream.status).toBe(200);
    await stream.body?.cancel();
    expect((await fetch(`${harper.httpUrl}/logout`, { method: 'POST', headers: { cookie } })).status).toBe(204);
    expect((await fetch(`${harper.httpUrl}/signs/${sign}`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${harper.httpUrl}/login`, { headers: { cookie } })).status).toBe(401);
  });

  it('the session holds for a request made the moment the login answers', async () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const login = await fetch(`${harper.httpUrl}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(viewer),
      });
      const cookie = login.headers
        .getSetCookie()
        .map((value) => value.split(';')[0])
        .join('; ');
      await login.arrayBuffer();
      const me = await fetch(`${harper.httpUrl}/login`, { headers: { cookie } });
      expect(me.status, `attempt ${attempt}`).toBe(200);
      await me.arrayBuffer();
    }
  });

  it('refuses a wrong password and a malformed login', async () => {
    const wrong = await fetch(`${harper.httpUrl}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...operator, password: 'wrong' }),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.getSetCookie().join('')).not.toMatch(/hdb-session=[^;]+/);
    const malformed = await rest(harper, 'POST', '/login', { json: { user: 'x' }, auth: null });
    expect(malformed.status).toBe(400);
  });
});
