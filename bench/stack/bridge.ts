/**
 * "The stack" baseline: the bridge service of Mosquitto + bridge + SQLite + SSE, the design the
 * one-runtime backbone replaces. NOT part of the product: it exists only for `npm run bench`.
 *
 * Written to be a fair opponent, not a strawman:
 * - one MQTT subscription to sensors/# (QoS 1) on the Mosquitto it sits beside;
 * - every message is checked (a JSON object with a string location and a finite temperature),
 *   then queued; once per event-loop tick the queue is written in ONE SQLite transaction
 *   (WAL, synchronous=NORMAL): latest state upsert + history append per message;
 * - after the commit, each message is sent to the SSE clients watching its sensor or the table,
 *   in Harper's frame shape ({"id","type":"put","value":{...}}), so both sides parse the same.
 * What it leaves out compared with the component: users and roles, replay, rules, statistics.
 *
 * - REST writes (PUT /sensors/<id>) take the same path and are answered 204 after their commit.
 * Usage: node dist/bench/stack/bridge.js --mqtt mqtt://127.0.0.1:1883 --port 8080 --db /tmp/stack.db
 * Prints "ready <port>" on stdout once it is subscribed and listening.
 */
import { createRequire } from 'node:module';
import { createServer, type ServerResponse } from 'node:http';
import mqtt from 'mqtt';
import type { SensorRecord } from '../../shared/records.js';

interface Statement {
  run(...params: unknown[]): unknown;
}
interface Database {
  pragma(sql: string): unknown;
  exec(sql: string): void;
  prepare(sql: string): Statement;
  transaction<T extends (...args: never[]) => void>(fn: T): T;
  close(): void;
}

const require = createRequire(import.meta.url);
const BetterSqlite3 = require('better-sqlite3') as new (file: string) => Database;

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

const mqttUrl = arg('mqtt');
const port = Number(arg('port'));
const db = new BetterSqlite3(arg('db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`CREATE TABLE IF NOT EXISTS sensors (id TEXT PRIMARY KEY, location TEXT NOT NULL, temperature REAL NOT NULL,
           humidity REAL, battery REAL, time REAL, updatedAt REAL NOT NULL);
         CREATE TABLE IF NOT EXISTS readings (seq INTEGER PRIMARY KEY, sensorId TEXT NOT NULL, time REAL NOT NULL,
           deviceTime REAL, location TEXT, temperature REAL, humidity REAL, battery REAL);
         CREATE INDEX IF NOT EXISTS readings_sensor_time ON readings (sensorId, time);`);
const upsert = db.prepare(`INSERT INTO sensors (id, location, temperature, humidity, battery, time, updatedAt)
  VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET location = excluded.location,
  temperature = excluded.temperature, humidity = excluded.humidity, battery = excluded.battery,
  time = excluded.time, updatedAt = excluded.updatedAt`);
const append = db.prepare(`INSERT INTO readings (sensorId, time, deviceTime, location, temperature, humidity, battery)
  VALUES (?, ?, ?, ?, ?, ?, ?)`);

/** The sensor record, as the component stores it: the bridge keeps the same fields. */
type Reading = SensorRecord;

const writeBatch = db.transaction((batch: Reading[]) => {
  for (const r of batch) {
    upsert.run(r.id, r.location, r.temperature, r.humidity ?? null, r.battery ?? null, r.time ?? null, r.updatedAt);
    append.run(r.id, r.updatedAt, r.time ?? null, r.location, r.temperature, r.humidity ?? null, r.battery ?? null);
  }
});

/** SSE clients: per sensor id, and "" for the whole table. */
const watchers = new Map<string, Set<ServerResponse>>();
let queue: Reading[] = [];
/** REST writers waiting for the commit of their reading. */
let waiting: ServerResponse[] = [];
let scheduled = false;

function enqueue(reading: Reading): void {
  queue.push(reading);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

function flush(): void {
  scheduled = false;
  const batch = queue;
  const writers = waiting;
  queue = [];
  waiting = [];
  try {
    writeBatch(batch);
  } catch (error) {
    console.error('bridge: write failed', error);
    for (const res of writers) res.writeHead(500).end();
    return;
  }
  for (const res of writers) res.writeHead(204).end();
  const table = watchers.get('');
  for (const r of batch) {
    const one = watchers.get(r.id);
    if (!table && !one) continue;
    const frame = `data: ${JSON.stringify({ id: r.id, type: 'put', value: r, localTime: r.updatedAt })}\n\n`;
    if (table) for (const res of table) res.write(frame);
    if (one) for (const res of one) res.write(frame);
  }
}

function check(id: string, payload: Buffer): Reading | undefined {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (
    typeof b.location !== 'string' ||
    !b.location ||
    typeof b.temperature !== 'number' ||
    !Number.isFinite(b.temperature)
  )
    return undefined;
  const r: Reading = { id, location: b.location, temperature: b.temperature, updatedAt: Date.now() };
  if (typeof b.humidity === 'number') r.humidity = b.humidity;
  if (typeof b.battery === 'number') r.battery = b.battery;
  if (typeof b.time === 'number') r.time = b.time;
  return r;
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (!path.startsWith('/sensors/') || (req.method !== 'GET' && req.method !== 'PUT')) {
    res.writeHead(404).end();
    return;
  }
  const id = decodeURIComponent(path.slice('/sensors/'.length));
  if (req.method === 'PUT') {
    // A REST write: stored in the next batch, answered 204 after its commit.
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reading = id ? check(id, Buffer.concat(chunks)) : undefined;
      if (!reading) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid"}');
        return;
      }
      waiting.push(res);
      enqueue(reading);
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(': ok\n\n');
  let set = watchers.get(id);
  if (!set) watchers.set(id, (set = new Set()));
  set.add(res);
  req.on('close', () => set!.delete(res));
});

const client = mqtt.connect(mqttUrl, { clientId: `stack-bridge-${process.pid}`, clean: true });
client.on('message', (topic, payload) => {
  if (!topic.startsWith('sensors/') || payload.length === 0) return;
  const reading = check(topic.slice('sensors/'.length), payload);
  if (!reading) return;
  enqueue(reading);
});
client.on('error', (error) => console.error('bridge: mqtt', error.message));
client.once('connect', () => {
  client.subscribe('sensors/#', { qos: 1 }, (error) => {
    if (error) throw error;
    server.listen(port, '127.0.0.1', () => console.log(`ready ${port}`));
  });
});

function stop(): void {
  client.end(true);
  server.close();
  for (const set of watchers.values()) for (const res of set) res.end();
  try {
    if (queue.length) flush();
    db.close();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
