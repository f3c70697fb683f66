/**
 * The scenarios, and how one of them runs: subscribers connect (in this thread, or in a worker
 * thread for fixed-rate load), the publisher warms up, publishes at its rate or within its window,
 * and every delivery is counted and timed.
 */
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Worker, parentPort } from 'node:worker_threads';
import type { Result, Scenario } from './report.js';
import { basicAuth } from '../launcher/harper-process.js';
import { makeHandler, mqttClient, mqttSub, now, sseSub, wsSub, type Sub, type Target } from './clients.js';
import { cpuMs, rssKb, type RunningSystem } from './systems.js';
import { progress, say } from './progress.js';

export const WINDOW = 200;
/**
 * Sensors a scenario's messages go to in turn. With the max-rate window, 100 sensors keep two
 * writes of each in flight; `--sensors` changes it (fewer: each sensor written faster).
 */
export const SENSORS_PER_SCENARIO = 100;

export function scenarios(quick: boolean): Scenario[] {
  if (quick)
    return [
      { key: 'tput-mqtt', title: 'MQTT->MQTT max rate', via: 'mqtt', subscribers: 1, mode: 'max', count: 500 },
      { key: 'tput-sse', title: 'MQTT->SSE max rate', via: 'sse', subscribers: 1, mode: 'max', count: 500 },
      { key: 'lat-sse', title: 'MQTT->SSE @200/s', via: 'sse', subscribers: 1, mode: 'rate', rate: 200, count: 200 },
      {
        key: 'fanout-mqtt',
        title: 'fan-out 1->10 MQTT @200/s',
        via: 'mqtt',
        subscribers: 10,
        mode: 'rate',
        rate: 200,
        count: 200,
        rss: true,
      },
    ];
  return [
    { key: 'tput-mqtt', title: 'MQTT->MQTT max rate', via: 'mqtt', subscribers: 1, mode: 'max', count: 20000 },
    { key: 'tput-sse', title: 'MQTT->SSE max rate', via: 'sse', subscribers: 1, mode: 'max', count: 20000 },
    {
      key: 'tput-rest-sse',
      title: 'REST->SSE max rate',
      via: 'sse',
      pub: 'rest',
      subscribers: 1,
      mode: 'max',
      count: 5000,
    },
    { key: 'tput-ws', title: 'MQTT->WebSocket max rate', via: 'ws', subscribers: 1, mode: 'max', count: 10000 },
    {
      key: 'tput-fanout-only',
      title: 'MQTT->MQTT no retain, max',
      via: 'mqtt',
      retain: false,
      subscribers: 1,
      mode: 'max',
      count: 10000,
    },
    // The fixed-rate rows are judged on a p99: 30 s at 200 msg/s puts 60 deliveries above it, so
    // one stall of the machine cannot decide a verdict by itself.
    { key: 'lat-mqtt', title: 'MQTT->MQTT @200/s', via: 'mqtt', subscribers: 1, mode: 'rate', rate: 200, count: 6000 },
    { key: 'lat-sse', title: 'MQTT->SSE @200/s', via: 'sse', subscribers: 1, mode: 'rate', rate: 200, count: 6000 },
    {
      key: 'fanout-mqtt',
      title: 'fan-out 1->50 MQTT @500/s',
      via: 'mqtt',
      subscribers: 50,
      mode: 'rate',
      rate: 500,
      // 15 s: long enough that a server which cannot keep up with 25,000 deliveries a second
      // shows it in the p99 (its backlog keeps growing), and that one stall does not decide it.
      count: 7500,
      rss: true,
    },
    {
      key: 'fanout-sse',
      title: 'fan-out 1->50 SSE @500/s',
      via: 'sse',
      subscribers: 50,
      mode: 'rate',
      rate: 500,
      count: 7500,
      rss: true,
    },
  ];
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

interface GroupResult {
  received: number;
  unique: number;
  duplicates: number;
  latencies: number[] | Float64Array;
  lastReceive: number;
}

/** The subscribers of one scenario, in this thread or in a worker thread. */
interface Group {
  readyCount(): number;
  totalUnique(): number;
  minUnique(): number;
  lastReceive(): number;
  finish(): Promise<GroupResult>;
  /** Drops the subscribers without a result (after an error). */
  close(): void;
}

export interface GroupSpec {
  target: Target;
  via: 'mqtt' | 'sse' | 'ws';
  subscribers: number;
  base: number;
  count: number;
  t0: number;
}

async function localGroup(spec: GroupSpec, onProgress: () => void): Promise<Group> {
  const latencies: number[] = [];
  const seen = Array.from({ length: spec.subscribers }, () => new Uint8Array(spec.count));
  let last = spec.t0;
  const run = {
    base: spec.base,
    count: spec.count,
    t0: spec.t0,
    seen,
    latencies,
    onProgress: () => {
      last = now();
      onProgress();
    },
  };
  const subs: Sub[] = [];
  try {
    for (let i = 0; i < spec.subscribers; i++) {
      // The handler needs the subscriber, which exists only once it subscribed with the handler.
      const counted: { handle?: (v: unknown) => void } = {};
      const handler = (v: unknown) => counted.handle?.(v);
      const sub =
        spec.via === 'mqtt'
          ? await mqttSub(spec.target, handler)
          : spec.via === 'ws'
            ? await wsSub(spec.target, handler)
            : await sseSub(spec.target, handler);
      counted.handle = makeHandler(sub, run, i);
      subs.push(sub);
    }
  } catch (error) {
    for (const sub of subs) sub.close();
    throw error;
  }
  return {
    readyCount: () => subs.filter((s) => s.ready).length,
    totalUnique: () => subs.reduce((n, s) => n + s.unique, 0),
    minUnique: () => subs.reduce((m, s) => Math.min(m, s.unique), Infinity),
    lastReceive: () => last,
    close: () => subs.forEach((sub) => sub.close()),
    finish: async () => {
      for (const sub of subs) sub.close();
      return {
        received: subs.reduce((n, s) => n + s.received, 0),
        unique: subs.reduce((n, s) => n + s.unique, 0),
        duplicates: subs.reduce((n, s) => n + s.duplicates, 0),
        latencies,
        lastReceive: last,
      };
    },
  };
}

/**
 * Subscribers in a worker thread, so that receiving and parsing (up to 25,000 deliveries a second
 * in the fan-out scenarios) does not delay the publisher's schedule on the main thread. Both
 * threads time with performance.timeOrigin + performance.now().
 */
function workerGroup(spec: GroupSpec): Promise<Group> {
  return new Promise((resolveGroup, fail) => {
    const worker = new Worker(fileURLToPath(new URL('./subscriber-worker.js', import.meta.url)), {
      workerData: { benchSubscribers: spec },
    });
    const state = { ready: 0, unique: 0, min: 0, last: spec.t0 };
    let finished: ((r: GroupResult) => void) | undefined;
    worker.on(
      'message',
      (m: { type: string } & Record<string, number> & { result?: GroupResult; message?: string }) => {
        if (m.type === 'subscribed') resolveGroup(group);
        else if (m.type === 'progress')
          Object.assign(state, { ready: m.ready, unique: m.unique, min: m.min, last: m.last });
        else if (m.type === 'done') finished?.(m.result!);
        else if (m.type === 'error') fail(new Error(m.message));
      },
    );
    worker.once('error', fail);
    const group: Group = {
      readyCount: () => state.ready,
      totalUnique: () => state.unique,
      minUnique: () => state.min,
      lastReceive: () => state.last,
      close: () => void worker.terminate(),
      finish: () =>
        new Promise<GroupResult>((done) => {
          finished = (r) => {
            void worker.terminate();
            done(r);
          };
          worker.postMessage('finish');
        }),
    };
  });
}

export async function subscriberWorker(spec: GroupSpec): Promise<void> {
  const port = parentPort!;
  let group: Group;
  try {
    group = await localGroup(spec, () => undefined);
  } catch (error) {
    port.postMessage({ type: 'error', message: (error as Error).message });
    return;
  }
  const report = () =>
    port.postMessage({
      type: 'progress',
      ready: group.readyCount(),
      unique: group.totalUnique(),
      min: group.minUnique(),
      last: group.lastReceive(),
    });
  const timer = setInterval(report, 20);
  port.postMessage({ type: 'subscribed' });
  port.on('message', async (m) => {
    if (m !== 'finish') return;
    clearInterval(timer);
    report();
    const r = await group.finish();
    const latencies = Float64Array.from(r.latencies);
    port.postMessage({ type: 'done', result: { ...r, latencies } }, [latencies.buffer]);
  });
}

export async function runScenario(
  system: RunningSystem,
  sc: Scenario,
  base: number,
  label: string,
): Promise<Omit<Result, 'threads' | 'round'>> {
  const t0 = now();
  let pump = (): void => {};
  const publisher = await mqttClient(system, 'pub');
  let rssMax = 0;
  let rssTimer: NodeJS.Timeout | undefined;
  let group: Group | undefined;
  try {
    const spec: GroupSpec = {
      target: { mqttUrl: system.mqttUrl, sseBase: system.sseBase, auth: system.auth },
      via: sc.via,
      subscribers: sc.subscribers,
      base,
      count: sc.count,
      t0,
    };
    // Max rate: the publisher reacts to each delivery, so the subscriber stays on this thread.
    group = sc.mode === 'max' ? await localGroup(spec, () => pump()) : await workerGroup(spec);
    const subs = group;
    // Warm-up: until every subscriber has seen a fresh reading, the subscriptions are not live.
    const warmTopic = `sensors/${sc.key}-warm`;
    const warmDeadline = Date.now() + 20_000;
    while (subs.readyCount() < sc.subscribers) {
      if (Date.now() > warmDeadline)
        throw new Error(`subscribers not live after 20 s (${subs.readyCount()}/${sc.subscribers})`);
      publisher.publish(warmTopic, JSON.stringify({ location: 'bench', temperature: 0, time: now() }), {
        qos: 1,
        retain: true,
      });
      await new Promise((r) => setTimeout(r, 100));
    }

    let sent = 0;
    let restErrors = 0;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const sensors = sc.sensors ?? SENSORS_PER_SCENARIO;
    const publishOne = (): void => {
      const seq = sent++;
      const payload = JSON.stringify({ location: 'bench', temperature: base + seq, time: now() });
      if (sc.pub === 'rest') {
        const req = request(`${system.sseBase}/sensors/${sc.key}-${seq % sensors}`, {
          method: 'PUT',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            ...(system.auth ? { authorization: basicAuth(system.auth) } : {}),
          },
        });
        req.on('response', (res) => {
          if (res.statusCode !== 204 && res.statusCode !== 200) restErrors++;
          res.resume();
        });
        req.on('error', () => restErrors++);
        req.end(payload);
        return;
      }
      publisher.publish(`sensors/${sc.key}-${seq % sensors}`, payload, {
        qos: 1,
        retain: sc.retain !== false,
      });
    };
    const minUnique = (): number => subs.minUnique();
    const totalUnique = (): number => subs.totalUnique();
    const expected = sc.count * sc.subscribers;
    const start = now();
    const serverCpu = () => system.pids().reduce((n, pid) => n + cpuMs(pid), 0);
    const cpuAtStart = serverCpu();
    let lastProgress = Date.now();
    let lastCount = 0;

    if (sc.rss) {
      const sample = () =>
        (rssMax = Math.max(
          rssMax,
          system.pids().reduce((n, pid) => n + rssKb(pid), 0),
        ));
      sample();
      rssTimer = setInterval(sample, 250);
    }

    await new Promise<void>((finished) => {
      let pumping = false;
      pump = () => {
        if (sc.mode !== 'max' || pumping) return;
        pumping = true;
        setImmediate(() => {
          pumping = false;
          while (sent < sc.count && sent - minUnique() < WINDOW) publishOne();
        });
      };
      let rateTimer: NodeJS.Timeout | undefined;
      if (sc.mode === 'max') {
        while (sent < sc.count && sent < WINDOW) publishOne();
      } else {
        const tick = (): void => {
          const due = Math.min(sc.count, Math.floor(((now() - start) * sc.rate!) / 1000) + 1);
          while (sent < due) publishOne();
          if (sent < sc.count) rateTimer = setTimeout(tick, 1);
        };
        tick();
      }
      const watch = setInterval(() => {
        const got = totalUnique();
        if (got !== lastCount) {
          lastCount = got;
          lastProgress = Date.now();
        }
        progress(`${label}: sent ${sent}/${sc.count}, received ${got}/${expected}`);
        const idle = Date.now() - lastProgress;
        if (got >= expected || (sent >= sc.count && idle > 3000) || idle > 10_000) {
          clearInterval(watch);
          if (rateTimer) clearTimeout(rateTimer);
          finished();
        }
      }, 100);
    });

    agent.destroy();
    if (restErrors) say(`${label}: ${restErrors} REST writes failed`);
    const done = await subs.finish();
    group = undefined;
    const { received, unique, duplicates } = done;
    const seconds = (done.lastReceive - start) / 1000;
    const latencies = Array.from(done.latencies).sort((a, b) => a - b);
    return {
      system: system.key,
      scenario: sc.key,
      sent,
      expected,
      received,
      lost: expected - unique,
      duplicates,
      throughput: seconds > 0 ? unique / seconds : 0,
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      max: latencies.length ? latencies[latencies.length - 1] : NaN,
      ...(sc.rss ? { rssMb: rssMax / 1024 } : {}),
      // Server CPU per message delivered: robust to other load on the machine, unlike time.
      cpuUsPerMsg: unique > 0 ? ((serverCpu() - cpuAtStart) * 1000) / unique : NaN,
    };
  } finally {
    if (rssTimer) clearInterval(rssTimer);
    group?.close();
    await publisher.endAsync(true).catch(() => undefined);
  }
}
