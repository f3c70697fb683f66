/**
 * One huge message must not inflate the server. Left to Harper, a device publishing a 24 MB
 * reading grew it from 270 MB to 1.66 GB before the publish was refused: Harper buffers and parses
 * the packet whole, and a validation that walks and copies it adds more. An MQTT packet or
 * WebSocket message over 256 KiB is refused as its first bytes arrive (lib/mqtt/wire-limits.ts), a
 * chunked REST body is cut off by Harper's http.maxRequestBodySize (set by the launcher), and what
 * gets through is checked by a bounded walk (lib/rules/limits.ts).
 *
 * Runs its own Harper, so the RSS measured (from /proc/<pid>/status) is this file's alone.
 */
import type { MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rssMb as serverRss, watchRss as watchServerRss } from './harness/memory.js';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { connectMqtt, reasonCodeOf } from './harness/mqtt.js';
import { basicAuth, rest } from './harness/rest.js';
import { createUser } from './harness/users.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

const run = `mem${Date.now().toString(36)}`;
const MB = 1024 * 1024;
/** As in the review: {"location":"x","temperature":1,"a":[0,0,... 12 million zeros]}, 24 MB. */
const huge = Buffer.from(`{"location":"x","temperature":1,"a":[${'0,'.repeat(12 * MB - 1)}0]}`);

let harper: TestHarper;
let device: AdminCredentials;

beforeAll(async () => {
  harper = await startTestHarper();
  device = await createUser(harper.endpoints, 'device', `${run}-dev`);
});

afterAll(async () => {
  await harper?.dispose();
});

const rssMb = () => serverRss(harper.instance.pid);
const watchRss = () => watchServerRss(harper.instance.pid, 100);

/**
 * What became of a publish: the connection closed (with the DISCONNECT reason code the server
 * sent, if any), or an answer in a PUBACK (on a connection that stays open).
 */
function outcomeOf(client: MqttClient, topic: string, payload: Buffer): Promise<string> {
  let reason: number | undefined;
  client.once('disconnect', (packet) => (reason = packet.reasonCode));
  const closed = new Promise<string>((resolve) =>
    client.once('close', () => resolve(reason === undefined ? 'closed' : `disconnect ${reason}`)),
  );
  const answered = client.publishAsync(topic, payload, { qos: 1 }).then(
    (packet) => `puback ${reasonCodeOf(packet)}`,
    // Rejected without a reason code: the connection closed under it; `closed` tells how.
    (error: { code?: number }) => (error.code === undefined ? closed : `puback ${error.code}`),
  );
  return Promise.race([closed, answered]);
}

async function expectServerAnswers(): Promise<void> {
  expect((await rest(harper.endpoints, 'GET', '/', { auth: null })).status).toBe(200);
  const client = await connectMqtt(harper.endpoints, { credentials: device });
  const good = JSON.stringify({ location: 'lab', temperature: 21 });
  expect(reasonCodeOf(await client.publishAsync(`sensors/${device.username}`, good, { qos: 1, retain: true }))).toBe(0);
  await client.endAsync();
  const stored = await rest<{ temperature: number }>(harper.endpoints, 'GET', `/sensors/${device.username}`);
  expect(stored.body).toMatchObject({ temperature: 21 });
}

describe('oversize messages are refused before the server buffers them', () => {
  it('ten concurrent 24 MB MQTT publishes from a device: connections closed (MQTT 5: DISCONNECT 0x95), RSS within 100 MB, server answering', async () => {
    const clients = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        connectMqtt(harper.endpoints, { credentials: device, protocolVersion: i % 2 ? 4 : 5 }),
      ),
    );
    const before = rssMb();
    const rss = watchRss();
    const started = performance.now();
    const outcomes = await Promise.all(clients.map((client) => outcomeOf(client, `sensors/${device.username}`, huge)));
    const elapsed = performance.now() - started;
    const peak = rss.stop();
    console.log(
      `10 x ${(huge.length / MB).toFixed(1)} MB over MQTT: refused in ${elapsed.toFixed(0)} ms; RSS ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB`,
    );
    await Promise.all(clients.map((client) => client.endAsync(true)));
    expect(outcomes.filter((_, i) => i % 2 === 0)).toEqual(Array(5).fill('disconnect 149'));
    expect(outcomes.filter((_, i) => i % 2 === 1)).toEqual(Array(5).fill('closed'));
    expect(peak - before).toBeLessThan(100);
    await expectServerAnswers();
  }, 60_000);

  it('WebSocket (resource and MQTT over WebSocket) and chunked REST: refused at once, RSS within 100 MB', async () => {
    const before = rssMb();
    const rss = watchRss();
    const headers = { authorization: basicAuth(device) };

    const socket = new WebSocket(`${harper.endpoints.wsUrl}/sensors/${device.username}`, { headers });
    await new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(huge);
    expect(await closed).toBe(1009); // Message Too Big

    const overWebSocket = await connectMqtt(harper.endpoints, { credentials: device, overWebSocket: true });
    expect(await outcomeOf(overWebSocket, `sensors/${device.username}`, huge)).toBe('closed');
    overWebSocket.end(true);

    // No Content-Length: Harper reads the body, and stops at http.maxRequestBodySize.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < huge.length; at += MB) controller.enqueue(huge.subarray(at, at + MB));
        controller.close();
      },
    });
    const response = await fetch(`${harper.endpoints.httpUrl}/sensors/${device.username}`, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'payload_too_large' });

    const peak = rss.stop();
    console.log(
      `24 MB over WebSocket, MQTT over WebSocket and chunked REST: RSS ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB`,
    );
    expect(peak - before).toBeLessThan(100);
    await expectServerAnswers();
  }, 60_000);

  it('a payload under the wire limit but over the record limit is refused by the bounded walk (an array of 100,000 zeros)', async () => {
    const client = await connectMqtt(harper.endpoints, { credentials: device });
    const zeros = Buffer.from(`{"location":"x","temperature":1,"a":[${'0,'.repeat(99_999)}0]}`);
    expect(zeros.length).toBeLessThan(256 * 1024);
    await expect(client.publishAsync(`sensors/${device.username}`, zeros, { qos: 1 })).rejects.toMatchObject({
      code: 128,
    });
    expect(client.connected).toBe(true);
    await client.endAsync();
  });
});
