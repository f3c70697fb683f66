/**
 * WebSocket writes are bounded per connection, as MQTT publishes are. Harper reads a WebSocket as
 * fast as frames arrive and queues every message for the resource, so on its own a client sending
 * readings without waiting for the replies piles them up in server memory (a flood like the one
 * below takes the server past a gigabyte within seconds). A connection's socket is not read while
 * 32 of its messages are unanswered (lib/streams/websocket-writes.ts): the rest waits in the client
 * and in TCP, and every message is still answered, in order.
 *
 * Runs its own Harper, so the memory measured (from /proc/<pid>/status) is this file's alone.
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { basicAuth, rest } from './harness/rest.js';

const run = `wsbp${Date.now().toString(36)}`;
const MESSAGES = 800_000;
const WARM_UP_MESSAGES = 3_000;
const ACKS_BEFORE_LOOKING = 500;
/** How long the server is watched after the first replies, writing while the flood waits. */
const WATCH_MS = 2_000;
const MAX_GROWTH_MB = 200;
let harper: TestHarper;

beforeAll(async () => {
  harper = await startTestHarper();
});

afterAll(async () => {
  await harper?.dispose();
});

/**
 * The server's anonymous resident memory (heap, buffers, queues). Pages of the database file it
 * maps are left out: they grow with what is stored, which is the point of a write.
 */
function anonymousMb(): number {
  const status = readFileSync(`/proc/${harper.instance.pid}/status`, 'utf8');
  return Number(/RssAnon:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Opens an authenticated WebSocket on one sensor's record. */
async function openSensorSocket(id: string): Promise<WebSocket> {
  const socket = new WebSocket(`${harper.endpoints.wsUrl}/sensors/${id}`, {
    headers: { authorization: basicAuth(harper.endpoints.admin) },
    // Uncompressed, so the client hands frames to TCP as fast as the server reads them; with
    // compression the client's own deflate queue is slower than the server and hides its bound.
    perMessageDeflate: false,
  });
  await new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));
  return socket;
}

/**
 * Sends `count` readings and waits for every reply, so that what the first WebSocket writes cost
 * the server once (compiled code, caches) is paid before the flood's memory is measured.
 */
async function warmUp(count: number): Promise<void> {
  const socket = await openSensorSocket(`${run}-warm`);
  let replies = 0;
  const done = new Promise<void>((resolve) =>
    socket.on('message', () => {
      if (++replies === count) resolve();
    }),
  );
  for (let i = 0; i < count; i++) socket.send(JSON.stringify({ location: 'warm-up', temperature: i % 50 }));
  await done;
  socket.close();
}

describe('WebSocket writes', () => {
  it(`a client sending ${MESSAGES} readings without waiting: the server reads only as fast as it writes, memory stays bounded, replies come in order`, async () => {
    await warmUp(WARM_UP_MESSAGES);
    const socket = await openSensorSocket(`${run}-flood`);
    const acks: number[] = [];
    const errors: unknown[] = [];
    let enough: () => void = () => undefined;
    const enoughAcks = new Promise<void>((resolve) => (enough = resolve));
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type?: string; updatedAt?: number };
      if (frame.type === 'ack') acks.push(frame.updatedAt!);
      else if (frame.type === 'error') errors.push(frame);
      if (acks.length === ACKS_BEFORE_LOOKING) enough();
    });

    const before = anonymousMb();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, anonymousMb())), 100);
    let sentBytes = 0;
    try {
      for (let i = 0; i < MESSAGES; i++) {
        const message = JSON.stringify({ location: 'flood', temperature: i % 50 });
        sentBytes += message.length;
        socket.send(message);
      }
      await enoughAcks;
      await new Promise((resolve) => setTimeout(resolve, WATCH_MS));
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, anonymousMb());
    // What the server has not taken in yet waits in this client (TCP buffers hold a few MB more).
    const waiting = socket.bufferedAmount;
    console.log(
      `${MESSAGES} messages (${(sentBytes / 1024 / 1024).toFixed(1)} MB) sent at once; after ${acks.length} replies: ${(waiting / 1024 / 1024).toFixed(1)} MB still waiting in the client, server anonymous memory ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MB`,
    );
    expect(errors).toEqual([]);
    expect(acks.length).toBeGreaterThanOrEqual(ACKS_BEFORE_LOOKING);
    // Loopback TCP buffers hold up to about 10 MB on common kernels; the rest (most of the 28 MB)
    // must still be in the client.
    expect(waiting).toBeGreaterThan(sentBytes / 4);
    expect(peak - before).toBeLessThan(MAX_GROWTH_MB);
    // Answered in the order sent, each after the one before (writes of one sensor are queued).
    expect(acks.every((time, i) => i === 0 || time > acks[i - 1])).toBe(true);
    socket.terminate();

    // The server still answers, and what it acknowledged is stored.
    const stored = await rest<{ temperature: number }>(harper.endpoints, 'GET', `/sensors/${run}-flood`);
    expect(stored.status).toBe(200);
  }, 90_000);
});
