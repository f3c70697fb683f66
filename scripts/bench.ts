/**
 * `npm run bench`: the backbone (this component) side by side with a plain broker, the stack it
 * replaces and a plain Harper table, all started and stopped here on loopback ports.
 * Method and how to read the output: bench/README.md. Nothing here asserts timings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request, type ClientRequest } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import mqtt, { type MqttClient } from 'mqtt';
import { chart, fmt, summarise, table, targets, variantLabel, type Result, type Scenario, type SystemKey } from './bench-report.js';
import { inspectorEnvironment, startProfiling, summarise as profileSummary } from './cpu-profile.js';
import { COMPONENT_DIR, basicAuth, freePort, startHarper, type AdminCredentials } from './harper-process.js';

const HELP = `npm run bench [-- options]

Runs every scenario against each system, one system at a time, then prints a table, the ratios
against (c) this component, the targets (bench/README.md), and writes an SVG chart and a JSON file.

Systems (each started and stopped by the benchmark on 127.0.0.1, free ports):
  mosquitto   (a) Mosquitto from Debian alone, no persistence
  stack       (b) Mosquitto + the bench/stack bridge (SQLite WAL, SSE after commit)
  component   (c) this component (validation, history, rules, statistics)
  plain       (d) a plain Harper table with no resource code

Options:
  --quick             small counts and fewer scenarios (a smoke test, under a minute)
  --systems <list>    comma-separated subset, e.g. component,plain (default: all four)
  --scenarios <list>  comma-separated subset of the scenario keys listed below
  --threads <list>    Harper worker thread counts to run (c) and (d) with (full run: 1,2; --quick: 1;
                      npm start uses 1); ratios and targets compare the 1-thread rows
  --repeat <n>        run everything n times, systems interleaved, and report medians with the
                      min-max spread (judge the targets on --repeat 3)
  --out <dir>         where results go (default bench/results)
  --profile <dir>     record Harper's worker threads during each scenario: <dir>/<system>-<scenario>-t<n>.cpuprofile
                      and a self-time summary on stderr
  --from <file.json>  print the table and targets of a saved run again and redraw its chart
  --help              this text

Scenarios (full run; --quick uses smaller ones):
  tput-mqtt     MQTT publish (QoS 1, retained) -> 1 MQTT subscriber, max rate
  tput-sse      MQTT publish (QoS 1, retained) -> 1 SSE subscriber, max rate
  tput-rest-sse REST PUT /sensors/<id> (8 keep-alive connections) -> 1 SSE subscriber, max rate
  tput-ws       MQTT publish (QoS 1, retained) -> 1 WebSocket subscriber, max rate (Harper only)
  tput-fanout-only  MQTT publish (QoS 1, NOT retained: fanned out, not stored) -> 1 MQTT subscriber
  lat-mqtt      MQTT -> MQTT at 200 msg/s: latency p50/p95/p99/max
  lat-sse       MQTT -> SSE at 200 msg/s: latency p50/p95/p99/max
  fanout-mqtt   1 -> 50 MQTT subscribers at 500 msg/s, latency and server RSS
  fanout-sse    1 -> 50 SSE subscribers at 500 msg/s, latency and server RSS
"Max rate" keeps at most ${200} messages in flight between publisher and subscriber.
Mosquitto alone has no SSE: its SSE rows are n/a; only Harper has WebSocket subscriptions.
The stack's bridge stores every message it sees, retained or not.
Requires the mosquitto binary (Debian: apt-get install mosquitto).`;

const ALL_SYSTEMS: SystemKey[] = ['mosquitto', 'stack', 'component', 'plain'];

const WINDOW = 200;
const SENSORS_PER_SCENARIO = 100;

function scenarios(quick: boolean): Scenario[] {
  if (quick)
    return [
      { key: 'tput-mqtt', title: 'MQTT->MQTT max rate', via: 'mqtt', subscribers: 1, mode: 'max', count: 500 },
      { key: 'tput-sse', title: 'MQTT->SSE max rate', via: 'sse', subscribers: 1, mode: 'max', count: 500 },
      { key: 'lat-sse', title: 'MQTT->SSE @200/s', via: 'sse', subscribers: 1, mode: 'rate', rate: 200, count: 200 },
      { key: 'fanout-mqtt', title: 'fan-out 1->10 MQTT @200/s', via: 'mqtt', subscribers: 10, mode: 'rate', rate: 200, count: 200, rss: true },
    ];
  return [
    { key: 'tput-mqtt', title: 'MQTT->MQTT max rate', via: 'mqtt', subscribers: 1, mode: 'max', count: 20000 },
    { key: 'tput-sse', title: 'MQTT->SSE max rate', via: 'sse', subscribers: 1, mode: 'max', count: 20000 },
    { key: 'tput-rest-sse', title: 'REST->SSE max rate', via: 'sse', pub: 'rest', subscribers: 1, mode: 'max', count: 5000 },
    { key: 'tput-ws', title: 'MQTT->WebSocket max rate', via: 'ws', subscribers: 1, mode: 'max', count: 10000 },
    { key: 'tput-fanout-only', title: 'MQTT->MQTT no retain, max', via: 'mqtt', retain: false, subscribers: 1, mode: 'max', count: 10000 },
    { key: 'lat-mqtt', title: 'MQTT->MQTT @200/s', via: 'mqtt', subscribers: 1, mode: 'rate', rate: 200, count: 1600 },
    { key: 'lat-sse', title: 'MQTT->SSE @200/s', via: 'sse', subscribers: 1, mode: 'rate', rate: 200, count: 1600 },
    { key: 'fanout-mqtt', title: 'fan-out 1->50 MQTT @500/s', via: 'mqtt', subscribers: 50, mode: 'rate', rate: 500, count: 3000, rss: true },
    { key: 'fanout-sse', title: 'fan-out 1->50 SSE @500/s', via: 'sse', subscribers: 50, mode: 'rate', rate: 500, count: 3000, rss: true },
  ];
}

interface RunningSystem {
  key: SystemKey;
  mqttUrl: string;
  /** Base URL of the SSE endpoint /sensors/, absent for Mosquitto alone. */
  sseBase?: string;
  /** Harper only: WebSocket subscriptions on the same port. */
  ws?: boolean;
  auth?: AdminCredentials;
  /** With --profile: the first worker thread's inspector port. */
  inspectorPort?: number;
  /** Processes whose RSS is the system's memory. */
  pids: () => number[];
  stop: () => Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// progress output

const tty = process.stderr.isTTY;
function progress(text: string): void {
  if (tty) process.stderr.write(`\r\x1b[K${text}`);
}
function say(text: string): void {
  if (tty) process.stderr.write('\r\x1b[K');
  process.stderr.write(text + '\n');
}

// ---------------------------------------------------------------------------------------------
// systems

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((done) => (child.exitCode !== null || child.signalCode !== null ? done() : child.once('exit', () => done())));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exitOf(child);
  clearTimeout(timer);
}

async function startMosquitto(workDir: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = join(workDir, `mosquitto-${port}.conf`);
  // A broker alone: anonymous on loopback, nothing persisted; queues long enough that a slow
  // subscriber is not silently dropped at the default of 1000 queued messages.
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`);
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  const failed = new Promise<never>((_, fail) => child.once('error', (e) => fail(new Error(`cannot run mosquitto (${e.message}); install it: apt-get install mosquitto`))));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${err}`);
    if (await Promise.race([tcpAccepts(port), failed])) return { child, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopChild(child);
  throw new Error(`mosquitto did not listen on ${port}: ${err}`);
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU time (ms) a process has used, user and system, from /proc/<pid>/stat. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** Linux's clock ticks per second for /proc times (USER_HZ, 100 on every common platform). */
const CLOCK_TICKS = 100;

async function startSystem(key: SystemKey, workDir: string, threads: number, profileDir?: string): Promise<RunningSystem> {
  if (key === 'mosquitto') {
    const { child, port } = await startMosquitto(workDir);
    return { key, mqttUrl: `mqtt://127.0.0.1:${port}`, pids: () => [child.pid!], stop: () => stopChild(child) };
  }
  if (key === 'stack') {
    const broker = await startMosquitto(workDir);
    const httpPort = await freePort();
    const dbFile = join(workDir, `stack-${httpPort}.db`);
    const bridgeJs = resolve(COMPONENT_DIR, 'dist', 'bench', 'stack', 'bridge.js');
    const bridge = spawn(process.execPath, [bridgeJs, '--mqtt', `mqtt://127.0.0.1:${broker.port}`, '--port', String(httpPort), '--db', dbFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error('the stack bridge did not start within 15 s')), 15_000);
      createInterface({ input: bridge.stdout! }).on('line', (line) => {
        if (line.startsWith('ready')) {
          clearTimeout(timer);
          ready();
        }
      });
      bridge.once('exit', (code) => fail(new Error(`the stack bridge exited (${code})`)));
    }).catch(async (error) => {
      await stopChild(bridge);
      await stopChild(broker.child);
      throw error;
    });
    return {
      key,
      mqttUrl: `mqtt://127.0.0.1:${broker.port}`,
      sseBase: `http://127.0.0.1:${httpPort}`,
      pids: () => [broker.child.pid!, bridge.pid!],
      stop: async () => {
        await stopChild(bridge);
        await stopChild(broker.child);
        for (const suffix of ['', '-wal', '-shm']) rmSync(dbFile + suffix, { force: true });
      },
    };
  }
  // Harper: this component, or the generated plain-table component.
  const componentDir = key === 'plain' ? plainTableComponent(workDir) : undefined;
  const dataDir = mkdtempSync(join(workDir, `harper-${key}-`));
  const ports = { http: await freePort(), mqtt: await freePort(), operations: await freePort() };
  const admin = { username: 'admin', password: randomBytes(16).toString('hex') };
    // Worker i's inspector listens on inspectorPort + i (a free port and, by and large, those after it).
  const inspectorPort = profileDir ? await freePort() : undefined;
  const env = { LOGGING_LEVEL: 'warn', ...(inspectorPort ? inspectorEnvironment(inspectorPort) : {}) };
  const instance = await startHarper({ dataDir, ports, admin, componentDir, threads, env });
  const pid = (): number => {
    try {
      return Number(readFileSync(join(instance.rootPath, 'hdb.pid'), 'utf8').trim()) || instance.pid;
    } catch {
      return instance.pid;
    }
  };
  return {
    key,
    mqttUrl: instance.mqttUrl,
    sseBase: instance.httpUrl,
    ws: true,
    auth: admin,
    inspectorPort,
    pids: () => [...new Set([pid(), instance.pid])],
    stop: async () => {
      await instance.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** (d): a component with one exported plain table, no resource code (generated at run time). */
function plainTableComponent(workDir: string): string {
  const dir = join(workDir, 'plain-table');
  mkdirSync(join(dir, 'web'), { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), "rest: true\ngraphqlSchema:\n  files: 'schema.graphql'\nstatic:\n  files: 'web/**'\n");
  writeFileSync(join(dir, 'schema.graphql'), 'type sensors @table @export {\n  id: ID @primaryKey\n}\n');
  // The launcher waits for "/" to answer 200.
  writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><title>plain table</title>\n');
  return dir;
}

// ---------------------------------------------------------------------------------------------
// clients

interface Sub {
  received: number;
  unique: number;
  duplicates: number;
  ready: boolean;
  close(): void;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

type Target = Pick<RunningSystem, 'mqttUrl' | 'sseBase' | 'auth'>;

/** A WebSocket subscriber (Harper's frames are the SSE ones: one JSON object per message). */
async function wsSub(system: Target, onValue: (v: unknown) => void): Promise<Sub> {
  const socket = new WebSocket(`${system.sseBase!.replace(/^http/, 'ws')}/sensors/`, {
    headers: system.auth ? { authorization: basicAuth(system.auth) } : {},
  });
  const sub: Sub = { received: 0, unique: 0, duplicates: 0, ready: false, close: () => socket.terminate() };
  socket.on('message', (data) => {
    try {
      onValue((JSON.parse(String(data)) as { value?: unknown }).value);
    } catch {
      // not ours
    }
  });
  await new Promise<void>((open, fail) => {
    socket.once('open', () => open());
    socket.once('error', fail);
  });
  socket.on('error', () => undefined);
  return sub;
}

async function mqttClient(system: Target, name: string): Promise<MqttClient> {
  return mqtt.connectAsync(system.mqttUrl, {
    clientId: `bench-${name}-${randomBytes(4).toString('hex')}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...(system.auth ? { username: system.auth.username, password: system.auth.password } : {}),
  });
}

/** Counts a delivered reading; latency from the `time` the publisher put in the payload. */
function makeHandler(sub: Sub, run: { base: number; count: number; t0: number; seen: Uint8Array[]; latencies: number[]; onProgress: () => void }, index: number) {
  return (value: unknown): void => {
    const at = now();
    if (!value || typeof value !== 'object') return;
    const v = value as { temperature?: unknown; time?: unknown };
    if (typeof v.temperature !== 'number' || typeof v.time !== 'number') return;
    const seq = v.temperature - run.base;
    if (!Number.isInteger(seq) || seq < 0 || seq >= run.count) {
      if (v.temperature === 0 && v.time >= run.t0) sub.ready = true;
      return;
    }
    sub.received++;
    const seen = run.seen[index];
    if (seen[seq]) {
      sub.duplicates++;
      return;
    }
    seen[seq] = 1;
    sub.unique++;
    run.latencies.push(at - v.time);
    run.onProgress();
  };
}

async function mqttSub(system: Target, onValue: (v: unknown) => void): Promise<Sub> {
  const client = await mqttClient(system, 'sub');
  const sub: Sub = { received: 0, unique: 0, duplicates: 0, ready: false, close: () => void client.end(true) };
  client.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    try {
      onValue(JSON.parse(payload.toString('utf8')));
    } catch {
      // not ours
    }
  });
  await client.subscribeAsync('sensors/#', { qos: 1 });
  return sub;
}

/** A lean SSE client (the same for every system): one socket, `data:` lines of JSON frames. */
function sseSub(system: Target, onValue: (v: unknown) => void): Promise<Sub> {
  return new Promise((done, fail) => {
    let req: ClientRequest | undefined = undefined;
    const sub: Sub = { received: 0, unique: 0, duplicates: 0, ready: false, close: () => req?.destroy() };
    req = request(
      `${system.sseBase}/sensors/`,
      { agent: false, headers: { accept: 'text/event-stream', ...(system.auth ? { authorization: basicAuth(system.auth) } : {}) } },
      (res) => {
        if (res.statusCode !== 200) {
          fail(new Error(`SSE ${res.statusCode}`));
          res.resume();
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            for (const line of block.split('\n')) {
              if (!line.startsWith('data:')) continue;
              try {
                const frame = JSON.parse(line.slice(5)) as { value?: unknown };
                onValue(frame.value);
              } catch {
                // not ours
              }
            }
          }
        });
      },
    );
    req.on('error', () => undefined); // closing the stream at the end aborts the request
    req.end();
    // Harper flushes the response head with the first event: readiness is decided by warm-up.
    done(sub);
  });
}

// ---------------------------------------------------------------------------------------------
// one scenario

function percentile(sorted: number[], p: number): number {
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

interface GroupSpec {
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
      let handle: ((v: unknown) => void) | undefined;
      const handler = (v: unknown) => handle?.(v);
      const sub =
        spec.via === 'mqtt' ? await mqttSub(spec.target, handler) : spec.via === 'ws' ? await wsSub(spec.target, handler) : await sseSub(spec.target, handler);
      handle = makeHandler(sub, run, i);
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
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { benchSubscribers: spec } });
    const state = { ready: 0, unique: 0, min: 0, last: spec.t0 };
    let finished: ((r: GroupResult) => void) | undefined;
    worker.on('message', (m: { type: string } & Record<string, number> & { result?: GroupResult; message?: string }) => {
      if (m.type === 'subscribed') resolveGroup(group);
      else if (m.type === 'progress') Object.assign(state, { ready: m.ready, unique: m.unique, min: m.min, last: m.last });
      else if (m.type === 'done') finished?.(m.result!);
      else if (m.type === 'error') fail(new Error(m.message));
    });
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

async function subscriberWorker(spec: GroupSpec): Promise<void> {
  const port = parentPort!;
  let group: Group;
  try {
    group = await localGroup(spec, () => undefined);
  } catch (error) {
    port.postMessage({ type: 'error', message: (error as Error).message });
    return;
  }
  const report = () => port.postMessage({ type: 'progress', ready: group.readyCount(), unique: group.totalUnique(), min: group.minUnique(), last: group.lastReceive() });
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

async function runScenario(system: RunningSystem, sc: Scenario, base: number, label: string): Promise<Omit<Result, 'threads' | 'round'>> {
  const t0 = now();
  let pump = (): void => {};
  const publisher = await mqttClient(system, 'pub');
  let rssMax = 0;
  let rssTimer: NodeJS.Timeout | undefined;
  let group: Group | undefined;
  try {
    const spec: GroupSpec = { target: { mqttUrl: system.mqttUrl, sseBase: system.sseBase, auth: system.auth }, via: sc.via, subscribers: sc.subscribers, base, count: sc.count, t0 };
    // Max rate: the publisher reacts to each delivery, so the subscriber stays on this thread.
    group = sc.mode === 'max' ? await localGroup(spec, () => pump()) : await workerGroup(spec);
    const subs = group;
    // Warm-up: until every subscriber has seen a fresh reading, the subscriptions are not live.
    const warmTopic = `sensors/${sc.key}-warm`;
    const warmDeadline = Date.now() + 20_000;
    while (subs.readyCount() < sc.subscribers) {
      if (Date.now() > warmDeadline) throw new Error(`subscribers not live after 20 s (${subs.readyCount()}/${sc.subscribers})`);
      publisher.publish(warmTopic, JSON.stringify({ location: 'bench', temperature: 0, time: now() }), { qos: 1, retain: true });
      await new Promise((r) => setTimeout(r, 100));
    }

    let sent = 0;
    let restErrors = 0;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const publishOne = (): void => {
      const seq = sent++;
      const payload = JSON.stringify({ location: 'bench', temperature: base + seq, time: now() });
      if (sc.pub === 'rest') {
        const req = request(`${system.sseBase}/sensors/${sc.key}-${seq % SENSORS_PER_SCENARIO}`, {
          method: 'PUT',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...(system.auth ? { authorization: basicAuth(system.auth) } : {}) },
        });
        req.on('response', (res) => {
          if (res.statusCode !== 204 && res.statusCode !== 200) restErrors++;
          res.resume();
        });
        req.on('error', () => restErrors++);
        req.end(payload);
        return;
      }
      publisher.publish(`sensors/${sc.key}-${seq % SENSORS_PER_SCENARIO}`, payload, { qos: 1, retain: sc.retain !== false });
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
      const sample = () => (rssMax = Math.max(rssMax, system.pids().reduce((n, pid) => n + rssKb(pid), 0)));
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

// ---------------------------------------------------------------------------------------------
// main

interface SavedRun {
  quick: boolean;
  rounds: number;
  threads: number[];
  systems: SystemKey[];
  scenarios: Scenario[];
  results: Result[];
  startedAt: string;
}

function report(run: SavedRun, svgFile: string): void {
  const rows = summarise(run.results, run.scenarios);
  const subtitle = `${run.quick ? 'quick' : 'full'} run, ${run.startedAt}, ${run.rounds} round(s), medians; Harper threads ${run.threads.join(', ')}; local results: do not publish Harper figures (harperdb licence)`;
  console.log('');
  console.log(table(rows, run.scenarios));
  console.log('');
  console.log(`Targets (medians of ${run.rounds} round(s), component and plain table with 1 thread each; informative, not a pass/fail test):`);
  for (const line of targets(rows)) console.log(line);
  writeFileSync(svgFile, chart(rows, run.scenarios, subtitle));
  console.log('');
  console.log(`chart: ${relative(process.cwd(), svgFile) || svgFile}`);
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new UsageError(`unknown ${what} "${item}" (one of: ${allowed.join(', ')})`);
  return items as T[];
}

class UsageError extends Error {}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      systems: { type: 'string' },
      scenarios: { type: 'string' },
      threads: { type: 'string' },
      repeat: { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'string' },
      from: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.from) {
    report(JSON.parse(readFileSync(values.from, 'utf8')) as SavedRun, values.from.replace(/\.json$/, '') + '.svg');
    return 0;
  }
  const quick = values.quick!;
  const systems = list(values.systems, ALL_SYSTEMS, 'system') ?? ALL_SYSTEMS;
  let scs = scenarios(quick);
  const wanted = list(values.scenarios, scenarios(false).map((s) => s.key), 'scenario');
  if (wanted) scs = scenarios(quick).concat(scenarios(false)).filter((s, i, all) => wanted.includes(s.key) && all.findIndex((o) => o.key === s.key) === i);
  // Harper's thread counts: the full run adds two threads to npm start's one, to show what a
  // second worker thread buys on this machine.
  const threadCounts = (values.threads ?? (quick ? '1' : '1,2')).split(',').map((t) => Number(t.trim()));
  if (threadCounts.some((t) => !Number.isInteger(t) || t < 1)) throw new UsageError('--threads takes positive integers, e.g. 1 or 1,2');
  const rounds = Number(values.repeat ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError('--repeat must be a positive integer');
  // Every round runs each system (each Harper with each thread count) once, one at a time, so
  // the rounds interleave the systems and a disturbance on the machine hits them alike.
  const variants = systems.flatMap((key): { key: SystemKey; threads: number }[] => (key === 'component' || key === 'plain' ? threadCounts.map((threads) => ({ key, threads })) : [{ key, threads: 1 }]));
  if (!existsSync(resolve(COMPONENT_DIR, 'dist', 'bench', 'stack', 'bridge.js')) && systems.includes('stack'))
    throw new UsageError('dist/bench/stack/bridge.js is missing: run through `npm run bench`, which builds it');

  if (values.profile) mkdirSync(resolve(values.profile), { recursive: true });
  const outDir = resolve(values.out ?? join(COMPONENT_DIR, 'bench', 'results'));
  mkdirSync(outDir, { recursive: true });
  // Scratch (configs, databases, Harper roots, the generated plain-table component) outside the
  // repository: Harper did not serve a component folder nested inside this one.
  const workDir = mkdtempSync(join(tmpdir(), 'backbone-bench-'));

  const started = Date.now();
  say(`bench: ${quick ? 'quick' : 'full'} run, ${rounds} round(s), systems ${systems.join(', ')}; Harper threads ${threadCounts.join(', ')}; scenarios ${scs.map((s) => s.key).join(', ')}`);
  const results: Result[] = [];
  let current: RunningSystem | undefined;
  const interrupt = () => {
    say('bench: interrupted, stopping the servers');
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  for (let round = 1; round <= rounds; round++) {
    for (const { key, threads } of variants) {
      const name = variantLabel(key, threads) + (rounds > 1 ? ` round ${round}/${rounds}` : '');
      const t = Date.now();
      say(`[${name}] starting`);
      try {
        current = await startSystem(key, workDir, threads, values.profile ? resolve(values.profile) : undefined);
      } catch (error) {
        say(`[${name}] failed to start: ${(error as Error).message}`);
        for (const sc of scs) results.push({ system: key, threads, round, scenario: sc.key, error: 'did not start' } as Result);
        continue;
      }
      say(`[${name}] up in ${((Date.now() - t) / 1000).toFixed(1)} s (pids ${current.pids().join(', ')})`);
      try {
        for (const [i, sc] of scs.entries()) {
          if ((sc.via === 'sse' && !current.sseBase) || (sc.via === 'ws' && !current.ws)) continue;
          const label = `[${name}] ${sc.key}`;
          try {
            const stopProfiling = values.profile && current.inspectorPort ? await startProfiling(current.inspectorPort, threads) : undefined;
            const r: Result = { ...(await runScenario(current, sc, (i + 1) * 1_000_000, label)), threads, round };
            if (stopProfiling) {
              const profiles = await stopProfiling();
              profiles.forEach((profile, thread) => {
                const file = join(resolve(values.profile!), `${key}-${threads}t-${sc.key}-r${round}-t${thread}.cpuprofile`);
                writeFileSync(file, JSON.stringify(profile));
                say(`${label}: profile of thread ${thread} in ${relative(process.cwd(), file)}\n${profileSummary(profile)}`);
              });
            }
            results.push(r);
            say(
              `${label}: ${fmt(r.throughput, 0)} msg/s, p50 ${fmt(r.p50, 2)} p99 ${fmt(r.p99, 2)} ms, lost ${r.lost}, dup ${r.duplicates}, server CPU ${fmt(r.cpuUsPerMsg, 0)} µs/msg` +
                (r.rssMb !== undefined ? `, RSS ${fmt(r.rssMb, 0)} MB` : ''),
            );
          } catch (error) {
            say(`${label}: failed: ${(error as Error).message}`);
            results.push({ system: key, threads, round, scenario: sc.key, error: 'failed' } as Result);
          }
        }
      } finally {
        await current.stop();
        current = undefined;
      }
    }
  }
  rmSync(workDir, { recursive: true, force: true });

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const run: SavedRun = { quick, rounds, threads: threadCounts, systems, scenarios: scs, results, startedAt: new Date(started).toISOString() };
  const jsonFile = join(outDir, `bench-${stamp}.json`);
  writeFileSync(jsonFile, JSON.stringify(run, null, 2) + '\n');
  report(run, join(outDir, `bench-${stamp}.svg`));
  console.log(`data:  ${relative(process.cwd(), jsonFile) || jsonFile}`);
  console.log(`took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return results.some((r) => r.error) ? 1 : 0;
}

if (!isMainThread && (workerData as { benchSubscribers?: GroupSpec } | undefined)?.benchSubscribers) {
  void subscriberWorker((workerData as { benchSubscribers: GroupSpec }).benchSubscribers);
} else {
  runMain();
}

function runMain(): void {
  main().then(
    (code) => process.exit(code),
    (error) => {
      if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        console.error(`bench: ${(error as Error).message}\n\n${HELP}`);
        process.exit(2);
      }
      console.error(error);
      process.exit(1);
    },
  );
}
