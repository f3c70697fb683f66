/**
 * Long-term history: per-minute and per-hour rollups of every sensor field, checked exactly against
 * the raw readings they summarise, with writes that arrive on two worker threads of one Harper and
 * on two nodes of a cluster; queried like readings (time ranges, sort, limit, select, CSV),
 * read-only, refused with a reason when the query is malformed, and read by the roles that read
 * history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { ReadingRecord } from '../lib/resources/readings.js';
import type { Rollup } from '../lib/resources/rollups.js';
import { eventually, startTestCluster, type TestCluster } from './harness/cluster.js';
import { startTestHarper, type HarperEndpoints, type TestHarper } from './harness/harper.js';
import { connectMqtt } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { createUser } from './harness/users.js';

const run = `roll${Date.now().toString(36)}`;
const FIELDS = ['temperature', 'humidity', 'battery'] as const;
const PERIOD = { '1m': 60_000, '1h': 3_600_000 } as const;
/** Hour parts written every 3 s instead of every minute (the default), so the tests need not wait a minute. */
const FAST_HOURS = { ROLLUPS_HOUR_FLUSH_SECONDS: '3' };

const readingsOf = async (node: HarperEndpoints, sensorId: string) => {
  const response = await rest<ReadingRecord[]>(node, 'GET', `/readings/?sensorId=${sensorId}&limit(100000)`);
  expect(response.status).toBe(200);
  return response.body;
};

const writerOf = (reading: ReadingRecord) => reading.id.slice(reading.id.lastIndexOf('@') + 1);

/** The rollups the readings should give, computed here from the raw readings. */
function expectedRollups(readings: ReadingRecord[], resolution: keyof typeof PERIOD): Rollup[] {
  const periods = new Map<number, ReadingRecord[]>();
  for (const reading of readings) {
    const start = reading.time - (reading.time % PERIOD[resolution]);
    periods.set(start, [...(periods.get(start) ?? []), reading]);
  }
  return [...periods.entries()]
    .sort(([a], [b]) => a - b)
    .map(([time, group]) => {
      const rollup = {
        id: `${group[0].sensorId}@${resolution}@${time}`,
        sensorId: group[0].sensorId,
        resolution,
        time,
      } as Rollup;
      for (const field of FIELDS) {
        const values = group.filter((reading) => typeof reading[field] === 'number');
        // The latest reading by time (same instant: the greater id, i.e. writer).
        const latest = values.reduce<ReadingRecord | undefined>(
          (a, b) => (!a || b.time > a.time || (b.time === a.time && writerOf(b) > writerOf(a)) ? b : a),
          undefined,
        );
        const numbers = values.map((reading) => reading[field] as number);
        rollup[`${field}Count`] = numbers.length;
        rollup[`${field}Min`] = numbers.length ? Math.min(...numbers) : null;
        rollup[`${field}Max`] = numbers.length ? Math.max(...numbers) : null;
        // The values are multiples of 1/4: sums are exact in any order.
        rollup[`${field}Mean`] = numbers.length
          ? numbers.reduce((sum, value) => sum + value, 0) / numbers.length
          : null;
        rollup[`${field}Last`] = latest ? (latest[field] as number) : null;
      }
      return rollup;
    });
}

const rollupsOf = async (node: HarperEndpoints, sensorId: string, resolution: string, query = '') => {
  const response = await rest<Rollup[]>(node, 'GET', `/rollups/?sensorId=${sensorId}&resolution=${resolution}${query}`);
  expect(response.status, response.text).toBe(200);
  return response.body;
};

/** Readings with values in quarters; humidity on every other one, battery on none. */
const reading = (i: number) => ({
  location: 'rollup',
  temperature: ((i * 37) % 200) / 4 - 10,
  ...(i % 2 === 0 ? { humidity: (i % 100) / 4 } : {}),
});

describe('rollups on one node with two worker threads', () => {
  let harper: TestHarper;
  let node: HarperEndpoints;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    harper = await startTestHarper({ env: { THREADS_COUNT: '2', ...FAST_HOURS } });
    node = harper.endpoints;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync()));
    await harper?.dispose();
  });

  it('equal, minute by minute and hour by hour, what the readings stored by both threads give', async () => {
    const sensor = `${run}-threads`;
    // Harper hands each new connection to one of its threads: connect until both threads write.
    let i = 0;
    const writers = new Set<string>();
    for (let attempt = 0; attempt < 20 && writers.size < 2; attempt++) {
      const client = await connectMqtt(node);
      clients.push(client);
      for (let n = 0; n < 20; n++)
        await client.publishAsync(`sensors/${sensor}`, JSON.stringify(reading(i++)), { qos: 1, retain: true });
      for (const stored of await readingsOf(node, sensor)) writers.add(writerOf(stored));
    }
    expect(writers.size, 'readings stored by two threads').toBe(2);
    // Then all connections write at once, interleaved, so both threads' parts hold the same minutes.
    await Promise.all(
      clients.map(async (client) => {
        for (let n = 0; n < 50; n++)
          await client.publishAsync(`sensors/${sensor}`, JSON.stringify(reading(i++)), { qos: 1, retain: true });
      }),
    );
    // A REST write too (another connection, another door).
    expect((await rest(node, 'PUT', `/sensors/${sensor}`, { json: reading(i++) })).status).toBe(204);

    const readings = await readingsOf(node, sensor);
    expect(readings).toHaveLength(i);
    for (const resolution of ['1m', '1h'] as const) {
      const expected = expectedRollups(readings, resolution);
      // Minutes are written once a second and hours, here, every 3 s (FAST_HOURS), by each thread.
      const rollups = await eventually(
        () => rollupsOf(node, sensor, resolution),
        (rows) => JSON.stringify(rows) === JSON.stringify(expected),
        150_000,
        `${resolution} rollups equal to the readings`,
      );
      expect(rollups).toEqual(expected);
      expect(rollups.reduce((sum, row) => sum + (row.temperatureCount ?? 0), 0)).toBe(i);
      expect(
        rollups.every((row) => row.batteryCount === 0 && row.batteryMean === null && row.batteryLast === null),
      ).toBe(true);
    }
    // The state's temperature is the last reading's, and so is the last hour's "last".
    const state = await rest<{ temperature: number }>(node, 'GET', `/sensors/${sensor}`);
    expect((await rollupsOf(node, sensor, '1h')).at(-1)!.temperatureLast).toBe(state.body.temperature);
  }, 240_000);

  it('are queried like readings: time ranges, sort, limit, select, CSV', async () => {
    const sensor = `${run}-threads`;
    const all = await rollupsOf(node, sensor, '1m');
    expect(all.length).toBeGreaterThan(0);
    const first = all[0];
    expect(await rollupsOf(node, sensor, '1m', `&time=ge=${first.time}&time=le=${first.time}`)).toEqual([first]);
    expect(await rollupsOf(node, sensor, '1m', `&time=gt=${first.time}`)).toEqual(all.slice(1));
    expect(await rollupsOf(node, sensor, '1m', `&time=lt=${first.time}`)).toEqual([]);
    expect(await rollupsOf(node, sensor, '1m', '&sort(-time)')).toEqual([...all].reverse());
    expect(await rollupsOf(node, sensor, '1m', '&sort(-time)&limit(1)')).toEqual([all.at(-1)]);
    expect(await rollupsOf(node, sensor, '1m', '&limit(1,2)')).toEqual(all.slice(1, 2));
    expect(await rollupsOf(node, sensor, '1m', '&select(time,temperatureMean)')).toEqual(
      all.map(({ time, temperatureMean }) => ({ time, temperatureMean })),
    );
    expect(await rollupsOf(node, `${run}-nothing`, '1h')).toEqual([]);

    const csv = await rest(
      node,
      'GET',
      `/rollups/?sensorId=${sensor}&resolution=1h&select(time,temperatureCount,batteryMean)`,
      { headers: { accept: 'text/csv' } },
    );
    expect(csv.status).toBe(200);
    const hours = await rollupsOf(node, sensor, '1h');
    expect(csv.text.trim().split('\n')).toEqual([
      '"time","temperatureCount","batteryMean"',
      ...hours.map((row) => `${row.time},${row.temperatureCount},`),
    ]);
  });

  it('refuse malformed queries with the reason, and every write', async () => {
    const refused = async (query: string, field: string) => {
      const response = await rest<{ error: string; field: string; message: string }>(node, 'GET', `/rollups/${query}`);
      expect(response.status, `${query}: ${response.text}`).toBe(400);
      expect(response.body).toMatchObject({ error: 'invalid_query', field, message: expect.any(String) });
    };
    await refused('?resolution=1h', 'sensorId');
    await refused('?sensorId=x', 'resolution');
    await refused('?sensorId=x&resolution=1d', 'resolution');
    await refused('?sensorId=x&resolution=1m&location=lab', 'location');
    await refused('?sensorId=x&resolution=1m&time=ge=soon', 'time');
    await refused('?sensorId=x&resolution=1m&sort(temperatureMean)', 'sort');
    await refused('?sensorId=x&resolution=1m&select(nope)', 'select');
    await refused('x@1m@0', 'id');
    for (const method of ['PUT', 'PATCH', 'POST', 'DELETE']) {
      const response = await rest(node, method, '/rollups/x', method === 'DELETE' ? {} : { json: { sensorId: 'x' } });
      expect(response.status, method).toBe(405);
    }
  });

  it('are read by admin, operators and viewers; not by devices, not anonymously', async () => {
    const query = `/rollups/?sensorId=${run}-threads&resolution=1h`;
    for (const role of ['viewer', 'operator'] as const) {
      const user = await createUser(node, role, `${run}-${role}`);
      expect((await rest(node, 'GET', query, { auth: user })).status, role).toBe(200);
    }
    const device = await createUser(node, 'device', `${run}-threads`);
    expect((await rest(node, 'GET', query, { auth: device })).status).toBe(403);
    expect((await rest(node, 'GET', query, { auth: null })).status).toBe(401);
  });
});

describe('rollups on a cluster', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster({ env: FAST_HOURS });
  }, 180_000);
  afterAll(async () => {
    await cluster?.dispose();
  });

  it('writes of one sensor on both nodes give, on each node, the rollups of all its readings', async () => {
    const [a, b] = cluster.nodes.map((node) => node.endpoints);
    const sensor = `${run}-cluster`;
    const [onA, onB] = await Promise.all([connectMqtt(a), connectMqtt(b)]);
    try {
      let i = 0;
      for (let n = 0; n < 60; n++) {
        const k = i;
        i += 2;
        await Promise.all([
          onA.publishAsync(`sensors/${sensor}`, JSON.stringify(reading(k)), { qos: 1, retain: true }),
          onB.publishAsync(`sensors/${sensor}`, JSON.stringify(reading(k + 1)), { qos: 1, retain: true }),
        ]);
      }
      const readings = await eventually(
        () => readingsOf(a, sensor),
        (rows) => rows.length === i,
        30_000,
        'every reading on A',
      );
      expect(new Set(readings.map((row) => row.id.split('@')[2].split(':')[0])).size, 'readings from both nodes').toBe(
        2,
      );
      for (const resolution of ['1m', '1h'] as const) {
        const expected = expectedRollups(readings, resolution);
        for (const node of [a, b]) {
          const rollups = await eventually(
            () => rollupsOf(node, sensor, resolution),
            (rows) => JSON.stringify(rows) === JSON.stringify(expected),
            150_000,
            `${resolution} rollups on ${node.httpUrl}`,
          );
          expect(rollups).toEqual(expected);
        }
      }
    } finally {
      await Promise.all([onA.endAsync(), onB.endAsync()]);
    }
  }, 360_000);
});
