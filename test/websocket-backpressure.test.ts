/**
 * WebSocket writes are bounded per connection, as MQTT publishes are. Harper
 * reads a WebSocket as fast as frames arrive and queues every message for the resource, so on its
 * own a client sending readings without waiting for the replies piles them up in server memory. A
 * connection's socket is not read while 32 of its messages are unanswered (lib/streams/websocket-writes.ts):
 * the rest waits in the client and in TCP, and every message is still answered, in order.
 *
 * Runs its own Harper, so the RSS measured (from /proc/<pid>/status) is this file's alone.
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { basicAuth, rest } from './harness/rest.js';

const run = `wsbp${Date.now().toString(36)}`;
const MESSAGES = 800_000;
const ACKS_BEFORE_LOOKING = 500;
let harper: TestHarper;

beforeAll(async () => {
  harper = await startTestHarper();
});

afterAll(async () => {
  await harper?.dispose();
});

function rssMb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${harper.instance.pid}/status`, 'utf8'))![1]) / 1024;
}

describe('WebSocket writes', () => {
  it(`a client sending ${MESSAGES} readings without waiting: the server reads only as fast as it writes, memory stays bounded, replies come in order`, async () => {
    const id = `${run}-flood`;
    const socket = new WebSocket(`${harper.endpoints.wsUrl}/sensors/${id}`, {
      headers: { authorization: basicAuth(harper.endpoints.admin) },
    });
    await new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));
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

    const before = rssMb();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 100);
    let sentBytes = 0;
    for (let i = 0; i < MESSAGES; i++) {
      const message = JSON.stringify({ location: 'flood', temperature: i % 50 });
      sentBytes += message.length;
      socket.send(message);
    }
    await enoughAcks;
    clearInterval(sampler);
    peak = Math.max(peak, rssMb());
    // What the server has not taken in yet waits in this client (TCP buffers hold a few MB more).
    const waiting = socket.bufferedAmount;
    console.log(
      `${MESSAGES} messages (${(sentBytes / 1024 / 1024).toFixed(1)} MB) sent at once; after ${acks.length} replies: ${(waiting / 1024 / 1024).toFixed(1)} MB still waiting in the client, server RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MB`,
    );
    expect(errors).toEqual([]);
    // Loopback TCP buffers hold up to about 10 MB on common kernels; the rest (most of the 28 MB)
    // must still be in the client.
    expect(waiting).toBeGreaterThan(sentBytes / 4);
    expect(peak - before).toBeLessThan(100);
    // Answered in the order sent, each after the one before (writes of one sensor are queued).
    expect(acks.every((time, i) => i === 0 || time > acks[i - 1])).toBe(true);
    socket.terminate();

    // The server still answers, and what it acknowledged is stored.
    const stored = await rest<{ temperature: number }>(harper.endpoints, 'GET', `/sensors/${id}`);
    expect(stored.status).toBe(200);
  }, 60_000);
});
