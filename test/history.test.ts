/**
 * Every accepted, stored reading is kept: one reading per write, in order, under bursts;
 * queryable over REST by sensor and time range, sorted, paged, as CSV; never writable by clients;
 * and rolled up into per-sensor statistics.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectMqtt } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { wsSubscriber } from './harness/ws.js';
import { createUser } from './harness/users.js';
import type { ReadingRecord } from '../lib/resources/readings.js';
import { timeKey } from '../lib/write-path/server-time.js';

const harper = inject('harper');
const run = `hist${Date.now().toString(36)}`;

type Reading = ReadingRecord;

let mqtt: MqttClient;

beforeAll(async () => {
  mqtt = await connectMqtt(harper, { protocolVersion: 5 });
});

afterAll(async () => {
  await mqtt.endAsync();
});

async function readingsOf(sensorId: string, query = '&sort(time)&limit(5000)'): Promise<Reading[]> {
  const response = await rest<Reading[]>(harper, 'GET', `/readings/?sensorId=${sensorId}${query}`);
  expect(response.status).toBe(200);
  return response.body;
}

describe('history', () => {
  it('1,000 MQTT writes to one sensor, sent as fast as the client can, leave exactly 1,000 readings, in order', async () => {
    const sensor = `${run}-burst`;
    const start = Date.now();
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        mqtt.publishAsync(
          `sensors/${sensor}`,
          JSON.stringify({ location: 'burst', temperature: i / 10, time: start + i }),
          { qos: 1, retain: true },
        ),
      ),
    );
    const readings = await readingsOf(sensor);
    expect(readings).toHaveLength(1000);
    expect(readings.map((reading) => reading.deviceTime! - start)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(new Set(readings.map((reading) => reading.time)).size).toBe(1000); // server times are distinct
    // Ids lead with the server time, so the readings' key order is their time order.
    for (const reading of readings) expect(reading.id.startsWith(`${timeKey(reading.time)}@${sensor}@`)).toBe(true);
    const ids = readings.map((reading) => reading.id);
    expect([...ids].sort()).toEqual(ids);
    const state = await rest<{ temperature: number }>(harper, 'GET', `/sensors/${sensor}`);
    expect(state.body.temperature).toBe(99.9);
  }, 60_000);

  it('records every stored protocol write with its values; non-retained publishes leave none', async () => {
    const sensor = `${run}-each`;
    expect(
      (
        await rest(harper, 'PUT', `/sensors/${sensor}`, {
          json: { location: 'a', temperature: 1, humidity: 10, time: '2026-01-02T03:04:05Z' },
        })
      ).status,
    ).toBe(204);
    expect((await rest(harper, 'PATCH', `/sensors/${sensor}`, { json: { temperature: 2 } })).status).toBe(204);
    expect(
      (await rest(harper, 'POST', '/sensors/', { json: { id: sensor, location: 'b', temperature: 3 } })).status,
    ).toBe(201);
    await mqtt.publishAsync(`sensors/${sensor}`, JSON.stringify({ location: 'c', temperature: 4 }), {
      qos: 1,
      retain: true,
    });
    await mqtt.publishAsync(`sensors/${sensor}`, JSON.stringify({ location: 'not stored', temperature: 99 }), {
      qos: 1,
    });
    const socket = await wsSubscriber(harper, `/sensors/${sensor}`);
    socket.send({ location: 'd', temperature: 5, battery: 80 });
    await socket.inbox.waitFor((item) => item.type === 'ack');
    await socket.close();
    // A refused write leaves nothing either.
    expect(
      (await rest(harper, 'PUT', `/sensors/${sensor}`, { json: { location: 'e', temperature: 'x' } })).status,
    ).toBe(400);

    const readings = await readingsOf(sensor);
    expect(
      readings.map(({ location, temperature, humidity, battery, deviceTime }) => ({
        location,
        temperature,
        humidity,
        battery,
        deviceTime,
      })),
    ).toEqual([
      {
        location: 'a',
        temperature: 1,
        humidity: 10,
        battery: undefined,
        deviceTime: Date.parse('2026-01-02T03:04:05Z'),
      },
      // PATCH records the whole resulting state, not just the patch.
      {
        location: 'a',
        temperature: 2,
        humidity: 10,
        battery: undefined,
        deviceTime: Date.parse('2026-01-02T03:04:05Z'),
      },
      { location: 'b', temperature: 3, humidity: undefined, battery: undefined, deviceTime: undefined },
      { location: 'c', temperature: 4, humidity: undefined, battery: undefined, deviceTime: undefined },
      { location: 'd', temperature: 5, humidity: undefined, battery: 80, deviceTime: undefined },
    ]);
    const state = await rest<{ updatedAt: number }>(harper, 'GET', `/sensors/${sensor}`);
    expect(readings.at(-1)!.time).toBe(state.body.updatedAt);
  });

  it('answers queries by time range, sorted, limited and paged, and exports CSV', async () => {
    const sensor = `${run}-query`;
    for (let i = 0; i < 10; i++) {
      expect(
        (await rest(harper, 'PUT', `/sensors/${sensor}`, { json: { location: 'q', temperature: i } })).status,
      ).toBe(204);
    }
    const all = await readingsOf(sensor);
    expect(all.map((reading) => reading.temperature)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const [from, to] = [all[3].time, all[7].time];
    const range = await readingsOf(sensor, `&time=ge=${from}&time=lt=${to}&sort(time)`);
    expect(range.map((reading) => reading.temperature)).toEqual([3, 4, 5, 6]);
    const latest = await readingsOf(sensor, '&sort(-time)&limit(3)');
    expect(latest.map((reading) => reading.temperature)).toEqual([9, 8, 7]);
    const page2 = await readingsOf(sensor, '&sort(time)&limit(4,8)');
    expect(page2.map((reading) => reading.temperature)).toEqual([4, 5, 6, 7]);
    // Range, newest first, paged: the combination Harper 4.7 gets wrong on its own (lib/harper/sort-condition-workaround.ts).
    const rangePage = await readingsOf(sensor, `&time=gt=${all[1].time}&time=le=${all[8].time}&sort(-time)&limit(1,4)`);
    expect(rangePage.map((reading) => reading.temperature)).toEqual([7, 6, 5]);

    const csv = await rest(
      harper,
      'GET',
      `/readings/?sensorId=${sensor}&sort(time)&limit(2)&select(sensorId,temperature)`,
      { headers: { accept: 'text/csv' } },
    );
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(csv.text.trim().split('\n')).toEqual(['"sensorId","temperature"', `"${sensor}",0`, `"${sensor}",1`]);
  });

  it('is read-only over every protocol, readable by viewers, not by devices', async () => {
    const sensor = `${run}-ro`;
    expect((await rest(harper, 'PUT', `/sensors/${sensor}`, { json: { location: 'r', temperature: 1 } })).status).toBe(
      204,
    );
    const [reading] = await readingsOf(sensor);
    const forged = await rest(harper, 'PUT', `/readings/${reading.id}`, { json: { ...reading, temperature: 100 } });
    expect(forged.status).toBe(403);
    expect(forged.body).toMatchObject({ error: 'forbidden' });
    expect((await rest(harper, 'DELETE', `/readings/${reading.id}`)).status).toBe(403);
    await expect(
      mqtt.publishAsync(`readings/${run}-x`, JSON.stringify({ sensorId: sensor }), { qos: 1, retain: true }),
    ).rejects.toMatchObject({ code: 128 });
    expect((await readingsOf(sensor))[0].temperature).toBe(1);

    const viewer = await createUser(harper, 'viewer', `${run}-viewer`);
    const device = await createUser(harper, 'device', `${run}-device`);
    expect((await rest(harper, 'GET', `/readings/?sensorId=${sensor}`, { auth: viewer })).status).toBe(200);
    expect((await rest(harper, 'GET', `/readings/?sensorId=${sensor}`, { auth: device })).status).toBe(403);
    expect((await rest(harper, 'GET', `/readings/?sensorId=${sensor}`, { auth: null })).status).toBe(401);
  });
});

describe('rolling statistics', () => {
  it('count, min, max and mean over the last hour and day, kept current by each reading', async () => {
    const sensor = `${run}-stats`;
    for (const [temperature, humidity] of [
      [10, 40],
      [20, 50],
      [30, undefined],
      [0, 60],
    ]) {
      expect(
        (
          await rest(harper, 'PUT', `/sensors/${sensor}`, {
            json: { location: 's', temperature, ...(humidity === undefined ? {} : { humidity }) },
          })
        ).status,
      ).toBe(204);
    }
    const stats = await rest<{
      sensorId: string;
      lastUpdate: number;
      hour: Record<string, unknown>;
      day: Record<string, unknown>;
    }>(harper, 'GET', `/stats/${sensor}`);
    expect(stats.status).toBe(200);
    expect(stats.body.hour.temperature).toEqual({ count: 4, min: 0, max: 30, mean: 15 });
    expect(stats.body.hour.humidity).toEqual({ count: 3, min: 40, max: 60, mean: 50 });
    expect(stats.body.hour.battery).toEqual({ count: 0, min: null, max: null, mean: null });
    expect(stats.body.day).toEqual(stats.body.hour);
    const state = await rest<{ updatedAt: number }>(harper, 'GET', `/sensors/${sensor}`);
    expect(stats.body.lastUpdate).toBe(state.body.updatedAt);

    const unknown = await rest<{ hour: { temperature: { count: number } } }>(harper, 'GET', `/stats/${run}-nothing`);
    expect(unknown.body.hour.temperature.count).toBe(0);
    const device = await createUser(harper, 'device', `${run}-statsdev`);
    expect((await rest(harper, 'GET', `/stats/${sensor}`, { auth: device })).status).toBe(403);
    expect((await rest(harper, 'GET', `/stats/${sensor}`, { auth: null })).status).toBe(401);
  });
});
