/**
 * Rules and alerts inside the runtime: operators write rules (checked like every other write);
 * every stored reading is evaluated in the write path; crossing a threshold fires an alert, coming
 * back inside by the hysteresis resolves it; alerts reach MQTT, SSE and WebSocket subscribers,
 * also when the readings arrive in a burst.
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
const run = `al${Date.now().toString(36)}`;
let operator: AdminCredentials;
let viewer: AdminCredentials;
let mqtt: MqttClient;

beforeAll(async () => {
  operator = await createUser(harper, 'operator', `${run}-op`);
  viewer = await createUser(harper, 'viewer', `${run}-viewer`);
  mqtt = await connectMqtt(harper, { protocolVersion: 5 });
});

afterAll(async () => {
  await mqtt.endAsync();
});

const hot = (sensorId: string) => ({ sensorId, field: 'temperature', above: 30, hysteresis: 2 });
/** 25 ok, 31 fires, 32 and 29 stay firing (29 > 30 - 2), 27.5 resolves, 31 fires, 20 resolves. */
const sequence = [25, 31, 32, 29, 27.5, 31, 20];
const expected = [
  { state: 'firing', value: 31 },
  { state: 'resolved', value: 27.5 },
  { state: 'firing', value: 31 },
  { state: 'resolved', value: 20 },
];

describe('rules', () => {
  it('operators and the admin write rules; viewers and devices may not', async () => {
    expect((await rest(harper, 'PUT', `/rules/${run}-a`, { json: hot(`${run}-x`), auth: operator })).status).toBe(204);
    expect((await rest(harper, 'GET', `/rules/${run}-a`, { auth: viewer })).body).toMatchObject({
      id: `${run}-a`,
      above: 30,
    });
    const denied = await rest(harper, 'PUT', `/rules/${run}-a`, { json: hot(`${run}-y`), auth: viewer });
    expect(denied.status).toBe(403);
    const device = await createUser(harper, 'device', `${run}-dev`);
    expect((await rest(harper, 'PUT', `/rules/${run}-b`, { json: hot(`${run}-y`), auth: device })).status).toBe(403);
    expect((await rest(harper, 'GET', `/rules/${run}-a`, { auth: device })).status).toBe(403);
    expect((await rest(harper, 'DELETE', `/rules/${run}-a`, { auth: operator })).status).toBeLessThan(300);
    expect((await rest(harper, 'GET', `/rules/${run}-a`)).status).toBe(404);
  });

  it.each([
    [{ sensorId: '*', field: 'pressure', above: 1 }, 'invalid_field', 'field'],
    [{ sensorId: '*', field: 'temperature' }, 'missing_field', 'above'],
    [{ sensorId: '*', field: 'temperature', above: 10, below: 20 }, 'invalid_field', 'below'],
    [{ sensorId: '*', field: 'temperature', above: 10, hysteresis: -1 }, 'invalid_field', 'hysteresis'],
    [{ sensorId: 'bad id', field: 'temperature', above: 10 }, 'invalid_field', 'sensorId'],
    [{ field: 'temperature', above: 10 }, 'missing_field', 'sensorId'],
    [{ sensorId: '*', field: 'temperature', above: 10, colour: 'red' }, 'unknown_field', 'colour'],
  ])('refuses %j -> %s', async (rule, error, field) => {
    const response = await rest(harper, 'PUT', `/rules/${run}-bad`, { json: rule, auth: operator });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error, field });
  });

  it('refuses a non-retained publish of a rule (it would not be stored)', async () => {
    await expect(mqtt.publishAsync(`rules/${run}-np`, JSON.stringify(hot('*')), { qos: 1 })).rejects.toMatchObject({
      code: 128,
    });
    expect((await rest(harper, 'GET', `/rules/${run}-np`)).status).toBe(404);
  });
});

describe('alerts', () => {
  async function watchers(sensor: string): Promise<Subscriber[]> {
    const list = [
      await mqttSubscriber(harper, `alerts/+/${sensor}/+`, { name: 'MQTT alerts/+/<sensor>/+' }),
      sseSubscriber(harper, '/alerts/', { name: 'SSE alerts' }),
      await wsSubscriber(harper, '/alerts/', { name: 'WS alerts' }),
    ];
    // Live once a canary alert has reached all three: a rule on the same sensor's battery, toggled
    // by readings whose temperature (20) leaves the rule under test untouched.
    const canaryRule = `${run}-canary-${sensor}`;
    await rest(harper, 'PUT', `/rules/${canaryRule}`, { json: { sensorId: sensor, field: 'battery', above: 50 } });
    let battery = 10;
    await untilLive(
      list,
      () =>
        rest(harper, 'PUT', `/sensors/${sensor}`, {
          json: { location: 'oven', temperature: 20, battery: (battery = battery === 80 ? 10 : 80) },
        }),
      (item) => (item.topic ?? item.id ?? '').includes(canaryRule),
    );
    return list;
  }

  const isAlertOf = (ruleId: string, sensor: string) => (item: Received) =>
    (item.topic ?? '').startsWith(`alerts/${ruleId}/${sensor}/`) || (item.id ?? '').startsWith(`${ruleId}/${sensor}/`);

  /**
   * The alert transitions a subscriber received, in the order of the readings that caused them.
   * Each alert is a record of its own, and under a burst Harper may deliver records committed
   * within the same instant in another order; each alert carries its reading's `time`.
   */
  function transitions(subscriber: Subscriber, ruleId: string, sensor: string) {
    return subscriber.inbox
      .filter(isAlertOf(ruleId, sensor))
      .sort((a, b) => Number(valueField(a, 'time')) - Number(valueField(b, 'time')))
      .map((item) => ({ state: valueField(item, 'state'), value: valueField(item, 'value') }));
  }

  async function latest(ruleId: string, sensor: string) {
    const response = await rest<unknown[]>(
      harper,
      'GET',
      `/alerts/?ruleId=${ruleId}&sensorId=${sensor}&sort(-time)&limit(1)`,
    );
    return response.body[0];
  }

  it.each(['one at a time', 'in a burst'] as const)(
    'a scripted sequence of readings, %s, yields exactly the expected alerts on MQTT, SSE and WebSocket',
    async (pace) => {
      const sensor = `${run}-${pace === 'in a burst' ? 'burst' : 'step'}`;
      const ruleId = `${run}-hot-${pace === 'in a burst' ? 'b' : 's'}`;
      expect((await rest(harper, 'PUT', `/rules/${ruleId}`, { json: hot(sensor), auth: operator })).status).toBe(204);
      const subscribers = await watchers(sensor);
      const before = Date.now();
      try {
        const publish = (temperature: number) =>
          mqtt.publishAsync(`sensors/${sensor}`, JSON.stringify({ location: 'oven', temperature }), {
            qos: 1,
            retain: true,
          });
        if (pace === 'in a burst') await Promise.all(sequence.map(publish));
        else for (const temperature of sequence) await publish(temperature);
        // A non-retained publish is not a stored reading and is not evaluated.
        await mqtt.publishAsync(`sensors/${sensor}`, JSON.stringify({ location: 'oven', temperature: 99 }), { qos: 1 });
        // The last expected alert marks the end; everything before it has arrived by then.
        for (const subscriber of subscribers) {
          // Every expected alert arrives, each exactly once.
          const received = () => subscriber.inbox.filter(isAlertOf(ruleId, sensor)).length;
          await subscriber.inbox.waitFor(
            () => received() >= expected.length,
            5000,
            `${expected.length} alerts at ${subscriber.name}`,
          );
          expect(transitions(subscriber, ruleId, sensor), subscriber.name).toEqual(expected);
          if (pace === 'one at a time') {
            // Spaced out, they also arrive in order.
            const arrival = subscriber.inbox.filter(isAlertOf(ruleId, sensor)).map((item) => valueField(item, 'value'));
            expect(arrival, subscriber.name).toEqual(expected.map((alert) => alert.value));
          }
        }
        expect(await latest(ruleId, sensor)).toMatchObject({
          ruleId,
          sensorId: sensor,
          state: 'resolved',
          field: 'temperature',
          value: 20,
        });
        const all = await rest<{ state: string; value: number }[]>(
          harper,
          'GET',
          `/alerts/?ruleId=${ruleId}&sensorId=${sensor}&sort(time)`,
        );
        expect(all.body.map(({ state, value }) => ({ state, value }))).toEqual(expected);
        // A dashboard that was away replays them: SSE on the alerts table from a time before.
        const replay = sseSubscriber(harper, `/alerts/?startTime=${before}`);
        try {
          await replay.inbox.waitFor((item) => isAlertOf(ruleId, sensor)(item) && valueField(item, 'value') === 20);
          expect(transitions(replay, ruleId, sensor)).toEqual(expected);
        } finally {
          await replay.close();
        }
      } finally {
        await Promise.all(subscribers.map((subscriber) => subscriber.close()));
      }
    },
  );

  it('a rule for "*" covers every sensor, and "below" fires on low values', async () => {
    const ruleId = `${run}-dry`;
    expect(
      (
        await rest(harper, 'PUT', `/rules/${ruleId}`, {
          json: { sensorId: '*', field: 'humidity', below: 20, hysteresis: 5 },
          auth: operator,
        })
      ).status,
    ).toBe(204);
    try {
      for (const [sensor, humidity] of [
        [`${run}-h1`, 15],
        [`${run}-h2`, 50],
        [`${run}-h1`, 22],
        [`${run}-h1`, 26],
      ] as const) {
        expect(
          (await rest(harper, 'PUT', `/sensors/${sensor}`, { json: { location: 'h', temperature: 20, humidity } }))
            .status,
        ).toBe(204);
      }
      expect(await latest(ruleId, `${run}-h1`)).toMatchObject({ state: 'resolved', value: 26 });
      expect(await latest(ruleId, `${run}-h2`)).toBeUndefined();
    } finally {
      await rest(harper, 'DELETE', `/rules/${ruleId}`);
    }
  });

  it('alerts are written by the server only', async () => {
    const forged = await rest(harper, 'PUT', `/alerts/${run}-x/${run}-y/1`, { json: { state: 'firing' } });
    expect(forged.status).toBe(403);
    expect(forged.body).toMatchObject({ error: 'forbidden' });
    expect((await rest(harper, 'GET', `/alerts/${run}-x/${run}-y/1`)).status).toBe(404);
  });
});
