/**
 * Slow consumers and publishers that outrun delivery (lib/write-path/publisher-backpressure.ts, lib/streams/slow-consumers.ts).
 *
 * Harper acknowledges a QoS 1 publish when its handler finishes and reads packets as fast as they
 * arrive, so without a bound a publisher that does not wait for acknowledgements piles work up in
 * server memory (RSS past 1 GB within 12 s, every other client's latency in seconds). These tests
 * flood the server and check the failure modes, with
 * bounds far from normal behaviour so that they fail on the failure mode, not on a slow machine:
 * server memory stays bounded, other clients keep receiving everything promptly, nothing
 * acknowledged is lost, and stalled subscribers get what they missed once they read again.
 * Runs its own Harper, so its memory is this file's alone.
 */
import { request, type IncomingMessage } from 'node:http';
import type { MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMqtt, parsePayload } from './harness/mqtt.js';
import { basicAuth, rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { rssMb as serverRss, watchRss as watchServerRss } from './harness/memory.js';
import { startTestHarper, type TestHarper } from './harness/harper.js';

let harper: TestHarper;

beforeAll(async () => {
  // A small backlog limit, so that stalled subscribers are cut off well within the test's 8 s.
  harper = await startTestHarper({ env: { SUBSCRIBER_MAX_BACKLOG: '500' } });
});

afterAll(async () => {
  await harper?.dispose();
});

interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

const rssMb = () => serverRss(harper.instance.pid);
const watchRss = () => watchServerRss(harper.instance.pid, 250);

interface Probe {
  /** Latency (ms) of each probe message per receiving client. */
  latencies: Map<string, number[]>;
  sent: number;
  stop(): Promise<void>;
}

/**
 * A well-behaved publisher (10 msg/s, waiting for each acknowledgement) and two well-behaved
 * subscribers (MQTT and SSE) on one sensor, running beside the load.
 */
async function startProbe(sensor: string): Promise<Probe> {
  const latencies = new Map<string, number[]>([
    ['mqtt', []],
    ['sse', []],
  ]);
  const record = (via: string, value: unknown) => {
    const time = (value as { time?: number } | null)?.time;
    if (typeof time === 'number') latencies.get(via)!.push(Date.now() - time);
  };
  const subscriber = await connectMqtt(harper.endpoints, {
    onMessage: (_topic, payload) => record('mqtt', parsePayload(payload)),
  });
  await subscriber.subscribeAsync(`sensors/${sensor}`, { qos: 1 });
  const sse = sseSubscriber(harper.endpoints, `/sensors/${sensor}`);
  const publisher = await connectMqtt(harper.endpoints);
  // The SSE stream opens with its first event: publish once before measuring.
  await publisher.publishAsync(`sensors/${sensor}`, JSON.stringify({ location: 'probe', temperature: -1 }), {
    qos: 1,
    retain: true,
  });
  await sse.opened;
  sse.source.onmessage = (event) => record('sse', (JSON.parse(event.data) as { value?: unknown }).value);
  let running = true;
  const probe: Probe = { latencies, sent: 0, stop: async () => {} };
  const loop = (async () => {
    while (running) {
      await publisher.publishAsync(
        `sensors/${sensor}`,
        JSON.stringify({ location: 'probe', temperature: probe.sent, time: Date.now() }),
        { qos: 1, retain: true },
      );
      probe.sent++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  probe.stop = async () => {
    running = false;
    await loop;
    // Every probe message must arrive at both subscribers.
    const deadline = Date.now() + 15_000;
    while ([...latencies.values()].some((list) => list.length < probe.sent) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await publisher.endAsync();
    await subscriber.endAsync();
    sse.close();
  };
  return probe;
}

function summary(values: number[]): { count: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

/**
 * Prints what was measured, then checks the failure modes: server memory grew by less than 250 MB,
 * and the well-behaved probe clients got every message, with p50 under 1 s and none over 5 s.
 */
function expectServed(load: string, probe: Probe, baseline: number, peak: number): void {
  const mqtt = summary(probe.latencies.get('mqtt')!);
  const sse = summary(probe.latencies.get('sse')!);
  console.log(
    `${load}; server RSS ${baseline.toFixed(0)} -> peak ${peak.toFixed(0)} MB; ` +
      `probe latency ms MQTT p50 ${mqtt.p50} p99 ${mqtt.p99} max ${mqtt.max}, SSE p50 ${sse.p50} p99 ${sse.p99} max ${sse.max}`,
  );
  expect(peak - baseline).toBeLessThan(250);
  for (const [via, seen] of [
    ['mqtt', mqtt],
    ['sse', sse],
  ] as const) {
    expect(seen.count, via).toBe(probe.sent);
    expect(seen.p50, via).toBeLessThan(1_000);
    expect(seen.max, via).toBeLessThan(5_000);
  }
}

describe('backpressure', () => {
  it('a publisher that never waits for acknowledgements is slowed by TCP, not buffered in server memory; others are served; every acknowledged write is stored', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000)); // let start-up allocations settle
    const baseline = rssMb();
    const rss = watchRss();
    const probe = await startProbe('bp-probe-1');
    const flood = await connectMqtt(harper.endpoints);
    const sensors = 10;
    const acked = new Array<number>(sensors).fill(0);
    let sent = 0;
    let flooding = true;
    const stream = flood.stream as unknown as { writableLength: number };
    const pump = () => {
      if (!flooding) return;
      // Keep this client's own buffer small: the point is to outrun the server, not to fill our memory.
      for (let i = 0; i < 200 && stream.writableLength < 1 << 20; i++) {
        const sensor = sent++ % sensors;
        flood.publish(
          `sensors/bp-flood-${sensor}`,
          JSON.stringify({ location: 'flood', temperature: sent }),
          { qos: 1, retain: true },
          (error) => {
            if (!error) acked[sensor]++;
          },
        );
      }
      setImmediate(pump);
    };
    pump();
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    flooding = false;
    await probe.stop();
    const peak = rss.stop();
    const ackedAtStop = acked.reduce((a, b) => a + b, 0);
    flood.end(true); // unacknowledged publishes may be dropped now; acknowledged ones may not

    expectServed(`flood: ${sent} published in 8 s, ${ackedAtStop} acknowledged`, probe, baseline, peak);
    // The publisher outran the server: tens of thousands sent and not yet acknowledged (the
    // server's own speed decides what share of the flood it acknowledges, so not a ratio).
    expect(sent - ackedAtStop).toBeGreaterThan(10_000);
    // Every acknowledged write is in the history (more may be: written, but the ack was cut off).
    for (let sensor = 0; sensor < sensors; sensor++) {
      const history = await rest<unknown[]>(
        harper.endpoints,
        'GET',
        `/readings/?sensorId=bp-flood-${sensor}&select(id)&limit(1000000)`,
      );
      expect(history.body.length, `bp-flood-${sensor}`).toBeGreaterThanOrEqual(acked[sensor]);
    }
  }, 90_000);

  it('subscribers that stop reading (MQTT QoS 1, SSE, WebSocket) are cut off with a reason instead of holding a backlog, do not delay the others, and lose nothing when they resume', async () => {
    // A topic in the catch-all space carries 16 KiB messages, so that 8 s at 500 msg/s (64 MB per
    // subscriber) is far more than the kernel's socket buffers absorb: without a bound the server
    // holds it all for each stalled subscriber.
    const topic = 'bp/heavy';
    const pad = 'x'.repeat(16 * 1024);
    const auth = basicAuth(harper.endpoints.admin);
    const publisher = await connectMqtt(harper.endpoints);
    // The record exists before anyone subscribes: an SSE response starts with its first event.
    await publisher.publishAsync(topic, JSON.stringify({ seq: -1 }), { qos: 1, retain: true });
    const baseline = rssMb();
    const rss = watchRss();

    type Seen = { seq: number; localTime: number; error?: string; closed: boolean };
    const seen: Record<'mqtt' | 'sse' | 'ws', Seen> = {
      mqtt: { seq: -1, localTime: 0, closed: false },
      sse: { seq: -1, localTime: 0, closed: false },
      ws: { seq: -1, localTime: 0, closed: false },
    };
    /** Takes one frame (SSE/WS: {type, value, localTime}; MQTT: the value itself). */
    const take = (
      via: keyof typeof seen,
      frame: { type?: string; value?: { seq?: number; error?: string }; localTime?: number; seq?: number } | null,
    ) => {
      if (frame?.type === 'error') seen[via].error = frame.value?.error;
      const seq = frame?.seq ?? frame?.value?.seq;
      if (typeof seq === 'number' && seq > seen[via].seq) seen[via].seq = seq;
      if (typeof frame?.localTime === 'number') seen[via].localTime = frame.localTime;
    };
    const clientId = `stalled-${Date.now()}`;
    // MQTT: a durable QoS 1 subscription whose socket is no longer read.
    const stalledMqtt: MqttClient = await connectMqtt(harper.endpoints, {
      clientId,
      clean: false,
      onMessage: (_topic, payload) => take('mqtt', parsePayload(payload) as { seq?: number }),
    });
    stalledMqtt.on('close', () => (seen.mqtt.closed = true));
    await stalledMqtt.subscribeAsync(topic, { qos: 1 });
    // SSE and WebSocket on the same record.
    const openSse = (query = '') =>
      new Promise<IncomingMessage>((resolve, reject) => {
        request(
          `${harper.endpoints.httpUrl}/${topic}${query}`,
          { headers: { accept: 'text/event-stream', authorization: auth } },
          resolve,
        )
          .on('error', reject)
          .end();
      });
    const readSse = (response: IncomingMessage) => {
      let buffer = '';
      response.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const data = buffer
            .slice(0, end)
            .split('\n')
            .find((line) => line.startsWith('data: '));
          buffer = buffer.slice(end + 2);
          if (data) take('sse', JSON.parse(data.slice(6)) as Parameters<typeof take>[1]);
        }
      });
      response.on('close', () => (seen.sse.closed = true));
    };
    const openWs = async (query = '') => {
      const socket = new WebSocket(`${harper.endpoints.wsUrl}/${topic}${query}`, { headers: { authorization: auth } });
      socket.on('message', (data) => take('ws', JSON.parse(String(data)) as Parameters<typeof take>[1]));
      socket.on('close', () => (seen.ws.closed = true));
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      return socket;
    };
    const sse = await openSse();
    readSse(sse);
    const socket = await openWs();
    // Stop reading: the server's writes to them back up.
    (stalledMqtt.stream as unknown as Pausable).pause();
    sse.pause();
    (socket as unknown as { _socket: Pausable })._socket.pause();

    const probe = await startProbe('bp-probe-2');
    let published = 0;
    const started = Date.now();
    while (Date.now() - started < 8_000) {
      const due = Math.floor(((Date.now() - started) / 1000) * 500);
      const batch: Promise<unknown>[] = [];
      while (published < due)
        batch.push(publisher.publishAsync(topic, JSON.stringify({ seq: published++, pad }), { qos: 1, retain: true }));
      await Promise.all(batch);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const last = published - 1;
    await probe.stop();
    const peak = rss.stop();
    await publisher.endAsync();

    expectServed(`stalled subscribers: ${published} messages of 16 KiB published in 8 s`, probe, baseline, peak);
    expect(published).toBeGreaterThan(3_000);

    // Reading again, each finds it was cut off: WebSocket and SSE with the reason, MQTT closed.
    (stalledMqtt.stream as unknown as Pausable).resume();
    sse.resume();
    (socket as unknown as { _socket: Pausable })._socket.resume();
    const until = async (condition: () => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(seen)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    // The SSE client's end is its error event: its socket is stalled, so the close may not reach it.
    await until(
      () => seen.mqtt.closed && seen.sse.error !== undefined && seen.ws.closed,
      'the stalled subscribers to be cut off',
    );
    expect({ sse: seen.sse.error, ws: seen.ws.error }).toEqual({ sse: 'slow_consumer', ws: 'slow_consumer' });
    expect(Math.max(seen.mqtt.seq, seen.sse.seq, seen.ws.seq)).toBeLessThan(last);
    stalledMqtt.end(true);

    // Resuming loses nothing: from the last event seen (SSE, WebSocket), or the durable session (MQTT).
    const resumedSse = await openSse(`?startTime=${seen.sse.localTime}`);
    readSse(resumedSse);
    const resumedWs = await openWs(`?startTime=${seen.ws.localTime}`);
    // Resuming a durable session that missed thousands of 16 KiB messages, Harper answered CONNACK
    // only after about 5 s on a quiet machine: allow more than the usual 5 s.
    const connecting = Date.now();
    const resumedMqtt = await connectMqtt(harper.endpoints, {
      clientId,
      clean: false,
      connectTimeoutMs: 30_000,
      onMessage: (_topic, payload) => take('mqtt', parsePayload(payload) as { seq?: number }),
    });
    console.log(`durable session resumed: CONNACK after ${Date.now() - connecting} ms`);
    await until(
      () => seen.mqtt.seq === last && seen.sse.seq === last && seen.ws.seq === last,
      'the resumed subscribers to reach the last message',
    );
    await resumedMqtt.endAsync();
    resumedWs.terminate();
    resumedSse.destroy();
    sse.destroy();
  }, 120_000);

  it('subscribers that keep reading are never cut off when the server itself falls behind them, and get every message', async () => {
    // 50 subscribers (40 MQTT QoS 1, 10 SSE) of one topic and a burst of non-retained publishes:
    // fanning out 200,000 deliveries takes the server seconds, so every subscriber's queue holds
    // far more than the backlog limit (500 here) while its client reads everything it is sent.
    const topic = 'bp/behind';
    const count = 4_000;
    const publisher = await connectMqtt(harper.endpoints);
    await publisher.publishAsync(topic, JSON.stringify({ seq: -1 }), { qos: 1, retain: true });
    type Seen = { seqs: Set<number>; closed: boolean; error?: string };
    const seen: Seen[] = [];
    const clients: { end(): unknown }[] = [];
    for (let i = 0; i < 40; i++) {
      const mine: Seen = { seqs: new Set(), closed: false };
      seen.push(mine);
      const client = await connectMqtt(harper.endpoints, {
        onMessage: (_topic, payload) => {
          const seq = (parsePayload(payload) as { seq?: number } | null)?.seq;
          if (typeof seq === 'number' && seq >= 0) mine.seqs.add(seq);
        },
      });
      client.on('close', () => (mine.closed = true));
      await client.subscribeAsync(topic, { qos: 1 });
      clients.push({ end: () => client.end(true) });
    }
    for (let i = 0; i < 10; i++) {
      const mine: Seen = { seqs: new Set(), closed: false };
      seen.push(mine);
      const sse = sseSubscriber(harper.endpoints, `/${topic}`);
      await sse.opened;
      sse.source.onmessage = (event) => {
        const frame = JSON.parse(event.data) as { type?: string; value?: { seq?: number; error?: string } };
        if (frame.type === 'error') mine.error = frame.value?.error;
        if (typeof frame.value?.seq === 'number' && frame.value.seq >= 0) mine.seqs.add(frame.value.seq);
      };
      sse.source.onerror = () => (mine.closed = true);
      clients.push({ end: () => sse.source.close() });
    }

    const started = Date.now();
    const acks: Promise<unknown>[] = [];
    for (let seq = 0; seq < count; seq++)
      acks.push(publisher.publishAsync(topic, JSON.stringify({ seq }), { qos: 1, retain: false }));
    await Promise.all(acks);
    const publishedIn = Date.now() - started;
    const behindAtEnd = Math.max(...seen.map((s) => count - s.seqs.size));
    const deadline = Date.now() + 60_000;
    while (seen.some((s) => s.seqs.size < count && !s.closed && !s.error) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    console.log(
      `server behind: ${count} messages to 50 subscribers published in ${publishedIn} ms; when the last was acknowledged the furthest subscriber ` +
        `still had ${behindAtEnd} to receive; all delivered after ${Date.now() - started} ms`,
    );
    const outcome = seen.map((s) => ({ received: s.seqs.size, cutOff: s.closed || s.error !== undefined }));
    for (const client of clients) client.end();
    await publisher.endAsync();

    // The premise: the server's queue for some subscriber was well over the backlog limit.
    expect(behindAtEnd).toBeGreaterThan(1_000);
    expect(outcome).toEqual(seen.map(() => ({ received: count, cutOff: false })));
  }, 120_000);
});
