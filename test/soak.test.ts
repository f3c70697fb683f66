/**
 * Soak: a steady 500 msg/s from 20 MQTT publishers (QoS 1, retained, 25 msg/s
 * each to a sensor of its own) to 100 subscribers across MQTT (QoS 1), SSE and WebSocket, five per
 * sensor, for SOAK_SECONDS (10 in the suite, 60 in `npm run test:reliability`). Every message a
 * publisher got acknowledged must reach every subscriber of its sensor; server RSS must stay
 * bounded (no growth trend over the second half); latency percentiles are printed.
 * Runs its own Harper, so its memory is this file's alone.
 */
import { EventSource } from 'eventsource';
import type { MqttClient } from 'mqtt';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectMqtt, parsePayload } from './harness/mqtt.js';
import { basicAuth } from './harness/rest.js';
import { startTestHarper, type TestHarper } from './harness/harper.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 10);
const PUBLISHERS = 20;
const SUBSCRIBERS = 100;
const RATE = 500; // messages per second, over all publishers
const PER_PUBLISHER = Math.round((RATE / PUBLISHERS) * SECONDS);

let harper: TestHarper;

beforeAll(async () => {
  harper = await startTestHarper(process.env.SOAK_THREADS ? { env: { THREADS_COUNT: process.env.SOAK_THREADS } } : {});
});

afterAll(async () => {
  await harper?.dispose();
});

interface Reading {
  temperature?: number;
  time?: number;
}

/** What one subscriber received: a mark per sequence number, and each message's latency. */
class Tally {
  readonly seen = new Uint8Array(PER_PUBLISHER);
  readonly latencies: number[] = [];
  duplicates = 0;
  constructor(
    readonly via: string,
    readonly publisher: number,
  ) {}
  take(value: Reading | null | undefined): void {
    const seq = value?.temperature;
    if (typeof seq !== 'number' || seq < 0 || seq >= PER_PUBLISHER) return; // the warm-up reading
    if (this.seen[seq]) this.duplicates++;
    else this.seen[seq] = 1;
    if (typeof value?.time === 'number') this.latencies.push(Date.now() - value.time);
  }
  missing(acknowledged: Uint8Array): number {
    let missing = 0;
    for (let seq = 0; seq < PER_PUBLISHER; seq++) if (acknowledged[seq] && !this.seen[seq]) missing++;
    return missing;
  }
}

function rssMb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${harper.instance.pid}/status`, 'utf8'))![1]) / 1024;
}

function percentiles(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]?.toFixed(1);
  return `p50 ${at(0.5)} p95 ${at(0.95)} p99 ${at(0.99)} max ${sorted.at(-1)?.toFixed(1)} ms (${sorted.length} deliveries)`;
}

it(
  `soak: ${RATE} msg/s from ${PUBLISHERS} publishers to ${SUBSCRIBERS} subscribers over MQTT, SSE and WebSocket for ${SECONDS} s: nothing acknowledged lost, memory bounded`,
  async () => {
    const sensor = (p: number) => `soak-${p}`;
    const endpoints = harper.endpoints;
    const auth = basicAuth(endpoints.admin);
    const publishers: MqttClient[] = [];
    for (let p = 0; p < PUBLISHERS; p++) {
      const client = await connectMqtt(endpoints, { protocolVersion: 4 });
      // The sensor exists before anyone subscribes (an SSE stream opens with its first event).
      await client.publishAsync(`sensors/${sensor(p)}`, JSON.stringify({ location: 'soak', temperature: -1 }), {
        qos: 1,
        retain: true,
      });
      publishers.push(client);
    }

    // Subscribers: 40 MQTT (QoS 1), 30 SSE, 30 WebSocket; subscriber k follows publisher k % 20.
    const tallies: Tally[] = [];
    const closers: (() => void)[] = [];
    const opened: Promise<unknown>[] = [];
    for (let k = 0; k < SUBSCRIBERS; k++) {
      const publisher = k % PUBLISHERS;
      const path = `/sensors/${sensor(publisher)}`;
      if (k < 40) {
        const tally = new Tally('MQTT', publisher);
        const client = await connectMqtt(endpoints, {
          onMessage: (_topic, payload) => tally.take(parsePayload(payload) as Reading),
        });
        await client.subscribeAsync(`sensors/${sensor(publisher)}`, { qos: 1 });
        tallies.push(tally);
        closers.push(() => client.end(true));
      } else if (k < 70) {
        const tally = new Tally('SSE', publisher);
        const source = new EventSource(endpoints.httpUrl + path, {
          fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers ?? {}), authorization: auth } }),
        });
        source.onmessage = (event) => tally.take((JSON.parse(event.data) as { value?: Reading }).value);
        opened.push(new Promise((resolve) => source.addEventListener('open', resolve)));
        tallies.push(tally);
        closers.push(() => source.close());
      } else {
        const tally = new Tally('WebSocket', publisher);
        const socket = new WebSocket(endpoints.wsUrl + path, { headers: { authorization: auth } });
        socket.on('message', (data) => tally.take((JSON.parse(String(data)) as { value?: Reading }).value));
        opened.push(new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)));
        tallies.push(tally);
        closers.push(() => socket.terminate());
      }
    }
    await Promise.all(opened);

    // Publish at a steady rate: every 20 ms each publisher sends what its schedule says is due.
    const acknowledged = Array.from({ length: PUBLISHERS }, () => new Uint8Array(PER_PUBLISHER));
    const sent = new Array<number>(PUBLISHERS).fill(0);
    const rss: number[] = [];
    const rssTimer = setInterval(() => rss.push(rssMb()), 1000);
    const started = Date.now();
    await new Promise<void>((done) => {
      const tick = setInterval(() => {
        const due = Math.min(PER_PUBLISHER, Math.floor(((Date.now() - started) / 1000) * (RATE / PUBLISHERS)) + 1);
        for (let p = 0; p < PUBLISHERS; p++) {
          while (sent[p] < due) {
            const seq = sent[p]++;
            publishers[p].publish(
              `sensors/${sensor(p)}`,
              JSON.stringify({ location: 'soak', temperature: seq, time: Date.now() }),
              { qos: 1, retain: true },
              (error) => {
                if (!error) acknowledged[p][seq] = 1;
              },
            );
          }
        }
        if (sent.every((count) => count >= PER_PUBLISHER)) {
          clearInterval(tick);
          done();
        }
      }, 20);
    });
    const publishSeconds = (Date.now() - started) / 1000;

    // Let deliveries finish: until every subscriber has every acknowledged message, or 30 s.
    const missingNow = () => tallies.reduce((sum, tally) => sum + tally.missing(acknowledged[tally.publisher]), 0);
    const acknowledgedCount = () => acknowledged.reduce((sum, marks) => sum + marks.reduce((a, b) => a + b, 0), 0);
    const deadline = Date.now() + 30_000;
    while ((acknowledgedCount() < PUBLISHERS * PER_PUBLISHER || missingNow() > 0) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    clearInterval(rssTimer);
    for (const close of closers) close();
    await Promise.all(publishers.map((client) => client.endAsync()));

    const byVia = (via: string) => tallies.filter((tally) => tally.via === via).flatMap((tally) => tally.latencies);
    const half = rss.slice(Math.floor(rss.length / 2));
    console.log(
      [
        `soak: ${PUBLISHERS * PER_PUBLISHER} messages in ${publishSeconds.toFixed(1)} s (${((PUBLISHERS * PER_PUBLISHER) / publishSeconds).toFixed(0)} msg/s), ${acknowledgedCount()} acknowledged, ` +
          `${missingNow()} deliveries missing, ${tallies.reduce((sum, tally) => sum + tally.duplicates, 0)} duplicates`,
        `  MQTT      ${percentiles(byVia('MQTT'))}`,
        `  SSE       ${percentiles(byVia('SSE'))}`,
        `  WebSocket ${percentiles(byVia('WebSocket'))}`,
        `  server RSS MB per second: ${rss.map((mb) => mb.toFixed(0)).join(' ')}`,
      ].join('\n'),
    );

    expect(acknowledgedCount()).toBe(PUBLISHERS * PER_PUBLISHER);
    expect(
      tallies.map((tally) => tally.missing(acknowledged[tally.publisher])).filter((missing) => missing > 0),
    ).toEqual([]);
    // Bounded: no growth trend over the second half of the run, and well under a gigabyte.
    expect(Math.max(...half) - Math.min(...half)).toBeLessThan(150);
    expect(Math.max(...rss)).toBeLessThan(800);
  },
  60_000 + SECONDS * 3_000,
);
