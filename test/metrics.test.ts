/**
 * GET /metrics: who may read it, `promtool check metrics` on its text, and a real Prometheus
 * (Debian's package, started here on a loopback port with its own data folder) scraping a Harper
 * with two worker threads: through Prometheus's HTTP API, the counters move by exactly the writes
 * this test makes, per protocol and refusal code, and so do deliveries and stored readings.
 * Its own Harper, so that no other test's traffic moves the figures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { freePort } from '../launcher/harper-process.js';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { connectMqtt } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { createUser } from './harness/users.js';
import { wsSubscriber } from './harness/ws.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

let server: TestHarper;
let monitor: AdminCredentials;
let viewer: AdminCredentials;
let prometheus: ChildProcess | undefined;
let prometheusUrl = '';
const scratch = mkdtempSync(join(tmpdir(), 'metrics-test-'));

beforeAll(async () => {
  server = await startTestHarper({ env: { THREADS_COUNT: '2' } });
  monitor = await createUser(server.endpoints, 'monitor', 'prometheus');
  viewer = await createUser(server.endpoints, 'viewer', 'watcher');
}, 120_000);

afterAll(async () => {
  if (prometheus?.pid && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await server?.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface VectorResult {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(expression: string, time?: number): Promise<VectorResult[]> {
  const url = new URL('/api/v1/query', prometheusUrl);
  url.searchParams.set('query', expression);
  if (time !== undefined) url.searchParams.set('time', String(time));
  const answer = (await (await fetch(url)).json()) as { status: string; data: { result: VectorResult[] } };
  expect(answer.status).toBe('success');
  return answer.data.result;
}

/** Every series of the node's figures at one scrape, keyed by name and labels. */
async function figuresAt(time: number): Promise<Map<string, number>> {
  const result = await query('{job="iot",__name__=~"iot_.*"}', time);
  const figures = new Map<string, number>();
  for (const { metric, value } of result) {
    const { __name__: name, job: _job, instance: _instance, ...labels } = metric;
    const key = `${name}{${Object.entries(labels)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}}`;
    figures.set(key, Number(value[1]));
  }
  return figures;
}

/** The time of the first scrape that started after `after` (ms), in Prometheus's seconds. */
function scrapeAfter(after: number): Promise<number> {
  return until(`a scrape after ${after}`, async () => {
    const [sample] = await query('timestamp(up{job="iot"} == 1)');
    const at = sample ? Number(sample.value[1]) : 0;
    return at * 1000 > after ? at : undefined;
  });
}

describe('GET /metrics', () => {
  it('answers the admin and the monitor role, never anonymous clients or other roles; the monitor reads no data', async () => {
    expect((await rest(server.endpoints, 'GET', '/metrics', { auth: null })).status).toBe(401);
    expect((await rest(server.endpoints, 'GET', '/metrics', { auth: viewer })).status).toBe(403);
    const admin = await rest(server.endpoints, 'GET', '/metrics');
    expect(admin.status).toBe(200);
    // Each worker thread makes itself known to the others once a second: on a busy machine the
    // second may not be known yet when the server starts answering.
    const asMonitor = await until(
      'both worker threads in /metrics',
      async () => {
        const scrape = await rest<string>(server.endpoints, 'GET', '/metrics', { auth: monitor });
        return scrape.status !== 200 || /^iot_worker_threads 2$/m.test(scrape.text) ? scrape : undefined;
      },
      15_000,
    );
    expect(asMonitor.status).toBe(200);
    expect(asMonitor.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(asMonitor.text).toMatch(/^iot_writes_accepted_total\{protocol="mqtt"\} \d+$/m);
    expect(asMonitor.text).toMatch(/^iot_worker_threads 2$/m);
    expect(
      (
        await rest(server.endpoints, 'PUT', '/sensors/mon-1', {
          auth: monitor,
          json: { location: 'x', temperature: 1 },
        })
      ).status,
    ).toBe(403);
    expect((await rest(server.endpoints, 'GET', '/sensors/', { auth: monitor })).status).toBe(403);
    expect((await rest(server.endpoints, 'GET', '/readings/', { auth: monitor })).status).toBe(403);
  });

  it('passes promtool check metrics without a remark', async () => {
    const text = (await rest(server.endpoints, 'GET', '/metrics', { auth: monitor })).text;
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect({ status: check.status, output: (check.stdout + check.stderr).trim() }).toEqual({ status: 0, output: '' });
  });

  it('a real Prometheus sees the counters move by exactly the writes made, per protocol and refusal code', async () => {
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const target = new URL(server.endpoints.httpUrl).host;
    writeFileSync(
      join(scratch, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: iot',
        '    scrape_interval: 1s',
        '    scrape_timeout: 1s',
        '    metrics_path: /metrics',
        '    basic_auth:',
        `      username: ${monitor.username}`,
        `      password: ${monitor.password}`,
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(scratch, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(scratch, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    prometheus.stderr!.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));

    const sensor = 'prom-1';
    const mqtt: MqttClient = await connectMqtt(server.endpoints, { protocolVersion: 5 });
    const sse = sseSubscriber(server.endpoints, `/sensors/${sensor}`);
    const ws = await wsSubscriber(server.endpoints, `/sensors/${sensor}`);
    const mqttReceived: string[] = [];
    mqtt.on('message', (topic, payload) => topic === `sensors/${sensor}` && mqttReceived.push(payload.toString()));
    await mqtt.subscribeAsync(`sensors/${sensor}`, { qos: 1 });
    try {
      const ready = Date.now();
      const first = await scrapeAfter(ready).catch((error: Error) => {
        throw new Error(`${error.message}; Prometheus said: ${log}`);
      });
      const before = await figuresAt(first);

      // The writes: accepted and refused on each protocol, every accepted one to the same sensor.
      const reading = (temperature: unknown) => JSON.stringify({ location: 'lab', temperature });
      for (let i = 0; i < 4; i++) await mqtt.publishAsync(`sensors/${sensor}`, reading(i), { qos: 1, retain: true });
      for (let i = 0; i < 2; i++)
        await expect(
          mqtt.publishAsync(`sensors/${sensor}`, reading('hot'), { qos: 1, retain: true }),
        ).rejects.toBeDefined();
      for (let i = 0; i < 3; i++)
        expect(
          (
            await rest(server.endpoints, 'PUT', `/sensors/${sensor}`, {
              json: { location: 'lab', temperature: 10 + i },
            })
          ).status,
        ).toBe(204);
      expect(
        (await rest(server.endpoints, 'PUT', `/sensors/${sensor}`, { json: { location: 'lab', temperature: 'hot' } }))
          .status,
      ).toBe(400);
      expect(
        (
          await rest(server.endpoints, 'PUT', `/sensors/${sensor}`, {
            auth: null,
            json: { location: 'lab', temperature: 1 },
          })
        ).status,
      ).toBe(401);
      const replies = () => ws.inbox.items.filter((item) => item.type === 'ack' || item.type === 'error').length;
      for (let i = 0; i < 2; i++) {
        ws.send({ location: 'lab', temperature: 20 + i });
        await until('the ack', async () => (replies() === i + 1 ? true : undefined));
      }
      ws.send({ location: 'lab', temperature: 'hot' });
      await until('the refusal', async () => (replies() === 3 ? true : undefined));
      const accepted = 4 + 3 + 2;
      // Every subscriber has had every accepted write (no coalescing of these one-by-one writes).
      await until('the deliveries', async () =>
        mqttReceived.length === accepted &&
        sse.inbox.items.length === accepted &&
        ws.inbox.items.length === accepted + 3
          ? true
          : undefined,
      );
      const written = Date.now();

      // What each counter must have moved by.
      const expected = {
        mqtt: 4,
        rest: 3,
        websocket: 2,
        mqttInvalid: 2,
        restInvalid: 1,
        restUnauthorized: 1,
        websocketInvalid: 1,
        readings: accepted,
        deliveredMqtt: accepted,
        deliveredSse: accepted,
        deliveredWebsocket: accepted + 3, // events and the three write replies
      };
      let after = new Map<string, number>();
      const moved = (key: string) => (after.get(key) ?? Number.NaN) - (before.get(key) ?? 0);
      const figures = (): typeof expected => ({
        mqtt: moved('iot_writes_accepted_total{protocol=mqtt}'),
        rest: moved('iot_writes_accepted_total{protocol=rest}'),
        websocket: moved('iot_writes_accepted_total{protocol=websocket}'),
        mqttInvalid: moved('iot_writes_refused_total{code=invalid_field,protocol=mqtt}'),
        restInvalid: moved('iot_writes_refused_total{code=invalid_field,protocol=rest}'),
        restUnauthorized: moved('iot_writes_refused_total{code=unauthorized,protocol=rest}'),
        websocketInvalid: moved('iot_writes_refused_total{code=invalid_field,protocol=websocket}'),
        readings: moved('iot_readings_stored_total{}'),
        deliveredMqtt: moved('iot_deliveries_total{protocol=mqtt}'),
        deliveredSse: moved('iot_deliveries_total{protocol=sse}'),
        deliveredWebsocket: moved('iot_deliveries_total{protocol=websocket}'),
      });
      // The first scrape that shows every write: a scrape that starts after them may still be
      // answered from an earlier instant when the machine is loaded, and the two worker threads'
      // figures may reach it in different scrapes, so later ones are read until every counter has
      // moved at least as far as it should (for up to 15 s); then each must have moved by exactly that.
      let last = 0;
      let since = written;
      while (Date.now() < written + 15_000) {
        last = await scrapeAfter(since);
        after = await figuresAt(last);
        const now = figures();
        if ((Object.keys(expected) as (keyof typeof expected)[]).every((key) => now[key] >= expected[key])) break;
        since = last * 1000;
      }
      expect(figures()).toEqual(expected);
      // Nothing else moved among the refusals.
      const refusedTotal = [...after.keys()]
        .filter((key) => key.startsWith('iot_writes_refused_total'))
        .reduce((total, key) => total + moved(key), 0);
      expect(refusedTotal).toBe(5);
      // Current figures, and at least one commit batch per stored write's turn.
      expect(after.get('iot_subscribers{protocol=sse}')).toBe(1);
      expect(after.get('iot_subscribers{protocol=websocket}')).toBe(1);
      expect(after.get('iot_subscribers{protocol=mqtt}')).toBe(1);
      expect(after.get('iot_connections{protocol=mqtt}')).toBe(1);
      expect(after.get('iot_connections{protocol=websocket}')).toBe(1);
      expect(moved('iot_commit_duration_seconds_count{}')).toBeGreaterThanOrEqual(1);
      expect(moved('iot_commit_duration_seconds_count{}')).toBeLessThanOrEqual(accepted);
      expect(after.get('iot_worker_threads{}')).toBe(2);
      // Minute parts are written within a second of a change; a scrape 3 s after the last write
      // counts the sensor's. Hour parts are written once a minute, so only their series is checked.
      const flushed = await figuresAt(await scrapeAfter(written + 3_000));
      const rollupParts = (resolution: string) =>
        (flushed.get(`iot_rollup_parts_written_total{resolution=${resolution}}`) ?? Number.NaN) -
        (before.get(`iot_rollup_parts_written_total{resolution=${resolution}}`) ?? 0);
      expect(rollupParts('1m')).toBeGreaterThanOrEqual(1);
      expect(rollupParts('1h')).toBeGreaterThanOrEqual(0);
      // The README's queries run.
      const p99 = await query(
        'histogram_quantile(0.99, sum by (le) (rate(iot_commit_duration_seconds_bucket[1m])))',
        last,
      );
      expect(p99).toHaveLength(1);
    } finally {
      await mqtt.endAsync();
      await sse.close();
      await ws.close();
    }
  }, 120_000);
});
