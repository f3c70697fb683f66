/**
 * Bounded work per request for replays and sorted queries. Harper reads its
 * audit log (kept 3 days) for a replay: unbounded, `?startTime=0` would read all of it,
 * `previousCount` on a table written rarely would scan it backwards to the start, and
 * `/readings/?time=gt=0&sort(time)&limit(1)` would load every reading before sorting (the sort
 * workaround of lib/harper/sort-condition-workaround.ts). So a replay reaches back at most 1 hour on a record and 10 minutes on a table (REPLAY_MAX_WINDOW_MS,
 * REPLAY_MAX_TABLE_WINDOW_MS), `previousCount` is for one record, and a sorted
 * query selects at most QUERY_MAX_SORTED_ROWS rows; beyond that each is refused with 400
 * `query_too_broad` and a reason, having read little. Bounded replays and narrow queries still
 * answer.
 *
 * Runs its own Harper (an audit log of 30,000 entries, and RSS that is this file's alone).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { connectMqtt } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { operations } from './harness/users.js';

const run = `rb${Date.now().toString(36)}`;
const READINGS = 30_000;
let harper: TestHarper;
let startedAt: number;

beforeAll(async () => {
  harper = await startTestHarper();
  startedAt = Date.now();
  // History as the server writes it (the admin's operations API bypasses the resource classes):
  // every insert is also an entry of the database's audit log.
  const client = operations(harper.endpoints);
  for (let batch = 0; batch < READINGS / 5_000; batch++) {
    const records = Array.from({ length: 5_000 }, (_, i) => {
      const n = batch * 5_000 + i;
      return {
        id: `${run}-s${n % 100}@${startedAt + n}@t`,
        sensorId: `${run}-s${n % 100}`,
        time: startedAt + n,
        location: 'lab',
        temperature: n % 40,
      };
    });
    await client.call({ operation: 'insert', database: 'data', table: 'readings', records });
  }
  expect(
    (await rest(harper.endpoints, 'PUT', `/sensors/${run}-s1`, { json: { location: 'lab', temperature: 1 } })).status,
  ).toBe(204);
}, 120_000);

afterAll(async () => {
  await harper?.dispose();
});

function rssMb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${harper.instance.pid}/status`, 'utf8'))![1]) / 1024;
}

/** Runs `request`, measuring its time and the server's RSS growth. */
async function measured<T>(
  what: string,
  request: () => Promise<T>,
): Promise<{ result: T; ms: number; rssGrowthMb: number }> {
  const before = rssMb();
  const started = performance.now();
  const result = await request();
  const ms = performance.now() - started;
  const rssGrowthMb = rssMb() - before;
  console.log(`${what}: ${ms.toFixed(0)} ms, server RSS ${rssGrowthMb >= 0 ? '+' : ''}${rssGrowthMb.toFixed(1)} MB`);
  return { result, ms, rssGrowthMb };
}

const sse = (path: string) => rest(harper.endpoints, 'GET', path, { headers: { accept: 'text/event-stream' } });

describe('sorted queries', () => {
  it(`a sort over every reading (${READINGS}) is refused with 400 query_too_broad, quickly, without loading them`, async () => {
    const { result, ms, rssGrowthMb } = await measured('GET /readings/?time=gt=0&sort(time)&limit(1)', () =>
      rest(harper.endpoints, 'GET', '/readings/?time=gt=0&sort(time)&limit(1)'),
    );
    expect(result.status).toBe(400);
    expect(result.body).toMatchObject({
      error: 'query_too_broad',
      field: 'time',
      rule: 'a sorted query selects at most 10000 rows',
    });
    expect(ms).toBeLessThan(3_000);
    expect(rssGrowthMb).toBeLessThan(50);
  });

  it('a narrow sorted query (one sensor, 300 readings) still answers, sorted and limited', async () => {
    const sensor = `${run}-s7`;
    const { result } = await measured('GET one sensor sorted', () =>
      rest<{ time: number }[]>(harper.endpoints, 'GET', `/readings/?sensorId=${sensor}&time=gt=0&sort(-time)&limit(3)`),
    );
    expect(result.status).toBe(200);
    const newest = startedAt + READINGS - 100 + 7;
    expect(result.body.map((reading) => reading.time)).toEqual([newest, newest - 100, newest - 200]);
  });
});

describe('replay', () => {
  it.each([
    `/sensors/${run}-s1?startTime=0`,
    `/sensors/${run}-s1?startTime=${Date.now() - 2 * 3_600_000}`,
    '/sensors/?startTime=0',
    '/alerts/?startTime=0',
    `/readings/?startTime=${Date.now() - 20 * 60_000}`,
  ])('SSE %s: refused with 400 query_too_broad naming the window, quickly', async (path) => {
    const { result, ms, rssGrowthMb } = await measured(`SSE ${path}`, () => sse(path));
    expect(result.status).toBe(400);
    expect(result.text).toContain('query_too_broad');
    expect(result.text).toContain('startTime');
    expect(ms).toBeLessThan(1_000);
    expect(rssGrowthMb).toBeLessThan(50);
  });

  it.each(['/rules/?previousCount=10', '/alerts/?previousCount=1000', '/sensors/?previousCount=5'])(
    'SSE %s (previousCount on a table): refused with 400, quickly',
    async (path) => {
      const { result, ms } = await measured(`SSE ${path}`, () => sse(path));
      expect(result.status).toBe(400);
      expect(result.text).toContain('query_too_broad');
      expect(result.text).toContain('previousCount');
      expect(ms).toBeLessThan(1_000);
    },
  );

  it('MQTT: sensors/<id>?startTime=0 is refused in the SUBACK', async () => {
    const client = await connectMqtt(harper.endpoints);
    try {
      const code = await client.subscribeAsync(`sensors/${run}-s1?startTime=0`, { qos: 1 }).then(
        (granted) => granted[0].qos,
        (error: { packet?: { granted?: number[] } }) => error.packet?.granted?.[0],
      );
      expect(code).toBeGreaterThanOrEqual(128);
    } finally {
      await client.endAsync();
    }
  });

  it('a replay inside the window, and previousCount on one record, still work', async () => {
    const recent = sseSubscriber(harper.endpoints, `/sensors/${run}-s1?startTime=${startedAt - 1}`);
    try {
      expect((await recent.inbox.waitFor((item) => item.id === `${run}-s1`)).value).toMatchObject({ temperature: 1 });
    } finally {
      await recent.close();
    }
    // A table's replay reads every audit entry of the database inside the window (here the 30,000
    // readings come before the one sensor write): what the window bounds.
    const started = performance.now();
    const table = sseSubscriber(harper.endpoints, `/sensors/?startTime=${startedAt - 1}`);
    try {
      expect((await table.inbox.waitFor((item) => item.id === `${run}-s1`, 10_000)).value).toMatchObject({
        temperature: 1,
      });
      console.log(
        `SSE /sensors/?startTime=<before ${READINGS} audit entries>: first event after ${(performance.now() - started).toFixed(0)} ms`,
      );
    } finally {
      await table.close();
    }
    const last = sseSubscriber(harper.endpoints, `/sensors/${run}-s1?previousCount=1`);
    try {
      expect((await last.inbox.waitFor((item) => item.id === `${run}-s1`)).value).toMatchObject({ temperature: 1 });
    } finally {
      await last.close();
    }
  });
});
