/**
 * WebSocket writes are bounded per connection, as MQTT publishes are. Harper reads a WebSocket as
 * fast as frames arrive and queues every message for the resource, so on its own a client sending
 * readings without waiting for the replies piles them up in server memory (with the bound lifted,
 * WS_MAX_PENDING_WRITES=100000000, the flood below took the server past a gigabyte within seconds
 * and it stopped answering other requests).
 * A connection's socket is not read while 32 of its messages are unanswered
 * (lib/streams/websocket-writes.ts): the rest waits in the client and in TCP, and every message is
 * still answered, in order.
 *
 * Runs its own Harper, so the memory measured (from /proc/<pid>/status) is this file's alone.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { rest } from './harness/rest.js';
import { wsSubscriber } from './harness/ws.js';

const run = `wsbp${Date.now().toString(36)}`;
const MESSAGES = 800_000;
const WARM_UP_MESSAGES = 3_000;
const ACKS_BEFORE_LOOKING = 500;
/** How long the server is watched after the first replies, writing while the flood waits. */
const WATCH_MS = 2_000;
const MAX_GROWTH_MB = 200;
/**
 * Messages read and not yet answered, at most. The bound pauses the socket at 32, but frames that
 * came in the same read (Node reads up to 64 KB: about 1,500 of these) are still taken; with the
 * bound lifted the queue passed 45,000.
 */
const MAX_QUEUED = 5_000;
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

/**
 * A socket uncompressed, so that the client hands frames to TCP as fast as the server reads them
 * (with compression the client's own deflate queue is slower than the server and hides its bound).
 */
const sensorSocket = (id: string) => wsSubscriber(harper.endpoints, `/sensors/${id}`, { compress: false });

/**
 * Sends `count` readings and waits for every reply, so that what the first WebSocket writes cost
 * the server once (compiled code, caches) is paid before the flood's memory is measured.
 */
async function warmUp(count: number): Promise<void> {
  const warm = await sensorSocket(`${run}-warm`);
  for (let i = 0; i < count; i++) warm.send({ location: 'warm-up', temperature: i % 50 });
  await warm.inbox.waitFor(() => warm.inbox.items.length === count, 30_000, `${count} replies`);
  await warm.close();
}

describe('WebSocket writes', () => {
  it(`a client sending ${MESSAGES} readings without waiting: the server reads only as fast as it writes, memory stays bounded, replies come in order`, async () => {
    await warmUp(WARM_UP_MESSAGES);
    const flood = await sensorSocket(`${run}-flood`);
    const before = anonymousMb();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, anonymousMb())), 100);

    // The server's deepest per-sensor write queue, from /metrics: every message it has read waits
    // there for its turn, so this is how far its reading runs ahead of its writing.
    let deepest = 0;
    const scrapeFailures: string[] = [];
    const queueDepth = async () => {
      try {
        const metrics = await rest<string>(harper.endpoints, 'GET', '/metrics');
        deepest = Math.max(deepest, Number(/^iot_write_queue_depth_max (\S+)$/m.exec(metrics.text)?.[1]));
      } catch (error) {
        scrapeFailures.push(String(error));
      }
    };
    let watching = true;
    const watchQueue = (async () => {
      while (watching) await Promise.all([queueDepth(), new Promise((resolve) => setTimeout(resolve, 250))]);
    })();

    let sentBytes = 0;
    try {
      for (let i = 0; i < MESSAGES; i++) {
        const message = JSON.stringify({ location: 'flood', temperature: i % 50 });
        sentBytes += message.length;
        flood.socket.send(message);
      }
      await flood.inbox.waitFor(
        () => flood.inbox.items.length >= ACKS_BEFORE_LOOKING,
        60_000,
        `${ACKS_BEFORE_LOOKING} replies`,
      );
      await new Promise((resolve) => setTimeout(resolve, WATCH_MS));
    } finally {
      watching = false;
      clearInterval(sampler);
    }
    await watchQueue;
    await queueDepth();
    peak = Math.max(peak, anonymousMb());
    const replies = flood.inbox.items;
    const acks = replies
      .filter((item) => item.type === 'ack')
      .map((item) => (item.value as { updatedAt: number }).updatedAt);
    console.log(
      `${MESSAGES} messages (${(sentBytes / 1024 / 1024).toFixed(1)} MB) sent at once; after ${acks.length} replies: deepest write queue ${deepest}, server anonymous memory ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MB`,
    );
    expect(scrapeFailures, 'the server answered /metrics throughout').toEqual([]);
    expect(replies.filter((item) => item.type === 'error')).toEqual([]);
    expect(acks.length).toBeGreaterThanOrEqual(ACKS_BEFORE_LOOKING);
    // What the server has read but not answered stays within one read of the bound; the rest of
    // the flood waits in TCP and in this client.
    expect(deepest).toBeLessThan(MAX_QUEUED);
    expect(peak - before).toBeLessThan(MAX_GROWTH_MB);
    // Answered in the order sent, each after the one before (writes of one sensor are queued).
    expect(acks.every((time, i) => i === 0 || time > acks[i - 1])).toBe(true);
    flood.socket.terminate();

    // The server still answers, and what it acknowledged is stored.
    const stored = await rest<{ temperature: number }>(harper.endpoints, 'GET', `/sensors/${run}-flood`);
    expect(stored.status).toBe(200);
  }, 90_000);
});
