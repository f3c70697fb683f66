/**
 * The node's operational figures, counted where they happen and added up over Harper's worker
 * threads when /metrics is read (lib/resources/metrics.ts formats them).
 *
 * Where they live. Harper runs the component in several worker threads of one process; a scrape
 * is answered by one of them, and it must report the whole node. Each thread therefore keeps its
 * figures in a Float64Array over a SharedArrayBuffer of its own, and hands that buffer to every
 * other thread through a BroadcastChannel (Node's channel between the threads of a process): a
 * thread that starts says hello with its buffer, every thread that hears a hello answers with its
 * own, and each repeats its announcement every second (below). The thread answering a scrape reads every buffer it knows, synchronously,
 * with no message exchanged at scrape time and no guess at how many threads exist. Each thread
 * writes only its own buffer; others only read it.
 *
 * Cost where it is counted: a counter is `figures[slot]++` on a typed array, nothing more; no
 * promise, timer or allocation per message. A one-second timer per thread samples what is not a
 * count (event-loop delay, the deepest write queue) and stamps a heartbeat.
 *
 * A thread that dies (Harper replaces a crashed worker) leaves its buffer behind: its counters
 * stay in the totals (what happened on this node since it started), while its gauges (current
 * connections and subscribers) are left out once its heartbeat is older than STALE_MS.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { BroadcastChannel, threadId } from 'node:worker_threads';
import type { RefusalCode } from '../rules/errors.js';

export const WRITE_PROTOCOLS = ['mqtt', 'rest', 'websocket'] as const;
export type WriteProtocol = (typeof WRITE_PROTOCOLS)[number];
export const STREAM_PROTOCOLS = ['mqtt', 'sse', 'websocket'] as const;
export type StreamProtocol = (typeof STREAM_PROTOCOLS)[number];

/** Refusal codes as labels: ours, plus what Harper refuses before our code runs. */
export const REFUSAL_CODES = [
  'malformed_json',
  'not_an_object',
  'unknown_field',
  'missing_field',
  'invalid_field',
  'invalid_id',
  'id_mismatch',
  'write_failed',
  'forbidden',
  'payload_too_large',
  'too_deep',
  'unsupported_content_type',
  'invalid_query',
  'not_stored',
  'method_not_allowed',
  'query_too_broad',
  'slow_consumer',
  'server_shutting_down',
  'unauthorized', // no credentials (Harper's 401)
  'other', // anything else Harper answered with an error
] as const satisfies readonly (RefusalCode | 'unauthorized' | 'other')[];
export type RefusalLabel = (typeof REFUSAL_CODES)[number];

/** Why lib/streams/slow-consumers.ts cut a subscriber off. */
export const CUTOFF_REASONS = [
  'socket_buffer',
  'backlog_not_taken',
  'stalled',
  'acknowledgements',
  'hard_backlog',
] as const;
export type CutoffReason = (typeof CUTOFF_REASONS)[number];

/** Rollup resolutions as labels (lib/resources/rollups.ts). */
export const ROLLUP_RESOLUTIONS = ['1m', '1h'] as const;
export type RollupResolution = (typeof ROLLUP_RESOLUTIONS)[number];

/** Upper bounds (seconds) of the commit-latency histogram's buckets; +Inf is implied. */
export const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** Slots of a thread's figures. Counters only grow; gauges are current values. */
const layout = (() => {
  let next = 0;
  const take = (n = 1) => {
    const at = next;
    next += n;
    return at;
  };
  return {
    heartbeat: take(), // ms since the epoch of the thread's last sample
    thread: take(), // the thread's id, for per-thread figures
    writesAccepted: take(WRITE_PROTOCOLS.length),
    writesRefused: take(WRITE_PROTOCOLS.length * REFUSAL_CODES.length),
    deliveries: take(STREAM_PROTOCOLS.length),
    subscribers: take(STREAM_PROTOCOLS.length), // gauge
    connections: take(STREAM_PROTOCOLS.length), // gauge
    cutoffs: take(CUTOFF_REASONS.length),
    commitBuckets: take(COMMIT_BUCKETS.length + 1), // cumulative counts are formed when read
    commitSum: take(),
    queueDepthMax: take(), // gauge: deepest per-record write queue in the last sample period
    readingsStored: take(),
    alertsStored: take(),
    rollupPartsWritten: take(ROLLUP_RESOLUTIONS.length),
    loopDelayP50: take(), // gauges, seconds, this thread's event loop in the last sample period
    loopDelayP99: take(),
    loopDelayMax: take(),
    size: next,
  };
})();

export const SLOTS = layout;

const STALE_MS = 5_000;
const SAMPLE_MS = 1_000;

const own = new Float64Array(new SharedArrayBuffer(layout.size * Float64Array.BYTES_PER_ELEMENT));
own[layout.thread] = threadId;
own[layout.heartbeat] = Date.now();

/** Every thread's figures this thread knows of, its own included, by thread id. */
const threads = new Map<number, Float64Array>([[threadId, own]]);

interface Announcement {
  thread: number;
  figures: SharedArrayBuffer;
  hello: boolean;
}

const channel = new BroadcastChannel('iot-backbone-metrics');
channel.onmessage = (message: unknown) => {
  const data = (message as { data?: Partial<Announcement> }).data;
  if (typeof data?.thread !== 'number' || !(data.figures instanceof SharedArrayBuffer)) return;
  threads.set(data.thread, new Float64Array(data.figures));
  if (data.hello) channel.postMessage({ thread: threadId, figures: own.buffer, hello: false } satisfies Announcement);
};
channel.postMessage({ thread: threadId, figures: own.buffer, hello: true } satisfies Announcement);
// And again every second: a hello sent before another thread's channel existed reaches nobody,
// and under load a thread's answer can come after the first scrape; a repeated announcement
// makes every thread known within a second whatever the start order.
setInterval(
  () => channel.postMessage({ thread: threadId, figures: own.buffer, hello: false } satisfies Announcement),
  1000,
).unref();
// The channel must not keep a thread alive that Harper is stopping.
(channel as unknown as { unref?: () => void }).unref?.();

/* ---- counting, on this thread ---- */

const writeIndex: Record<WriteProtocol, number> = { mqtt: 0, rest: 1, websocket: 2 };
const streamIndex: Record<StreamProtocol, number> = { mqtt: 0, sse: 1, websocket: 2 };
const refusalIndex = new Map<string, number>(REFUSAL_CODES.map((code, i) => [code, i]));

export function countWriteAccepted(protocol: WriteProtocol): void {
  own[layout.writesAccepted + writeIndex[protocol]]++;
}

/** `code`: the refusal's code; anything not a known code counts as `other`. */
export function countWriteRefused(protocol: WriteProtocol, code: string | undefined): void {
  const index = refusalIndex.get(code ?? 'other') ?? refusalIndex.get('other')!;
  own[layout.writesRefused + writeIndex[protocol] * REFUSAL_CODES.length + index]++;
}

export function countDelivery(protocol: StreamProtocol): void {
  own[layout.deliveries + streamIndex[protocol]]++;
}

export function addSubscribers(protocol: StreamProtocol, change: 1 | -1): void {
  own[layout.subscribers + streamIndex[protocol]] += change;
}

export function addConnections(protocol: StreamProtocol, change: 1 | -1): void {
  own[layout.connections + streamIndex[protocol]] += change;
}

export function countCutoff(reason: CutoffReason): void {
  own[layout.cutoffs + CUTOFF_REASONS.indexOf(reason)]++;
}

/** One committed batch of the group commit: how long it took and how many writes it stored. */
export function observeCommit(seconds: number, stored: number): void {
  let bucket = 0;
  while (bucket < COMMIT_BUCKETS.length && seconds > COMMIT_BUCKETS[bucket]) bucket++;
  own[layout.commitBuckets + bucket]++;
  own[layout.commitSum] += seconds;
  own[layout.readingsStored] += stored;
}

export function countAlertsStored(count: number): void {
  own[layout.alertsStored] += count;
}

/** Rollup parts committed by one flush of lib/resources/rollups.ts. */
export function countRollupPartsWritten(resolution: RollupResolution, count: number): void {
  own[layout.rollupPartsWritten + ROLLUP_RESOLUTIONS.indexOf(resolution)] += count;
}

/* ---- sampling, once a second per thread ---- */

/** Reports the deepest per-record write queue since it was last asked (lib/write-path/group-commit.ts). */
let queueDepthSource: (() => number) | undefined;
export function sampleQueueDepth(source: () => number): void {
  queueDepthSource = source;
}

/** Node's histogram records each sampling interval's length: the delay is what exceeds it. */
const LOOP_RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();

function sample(): void {
  own[layout.heartbeat] = Date.now();
  own[layout.queueDepthMax] = queueDepthSource?.() ?? 0;
  // The histogram is in nanoseconds; an idle period has no samples (NaN/zero): report 0.
  const ns = (value: number) =>
    Number.isFinite(value) && value > LOOP_RESOLUTION_MS * 1e6 ? (value - LOOP_RESOLUTION_MS * 1e6) / 1e9 : 0;
  own[layout.loopDelayP50] = ns(loopDelay.percentile(50));
  own[layout.loopDelayP99] = ns(loopDelay.percentile(99));
  own[layout.loopDelayMax] = ns(loopDelay.max);
  loopDelay.reset();
}
setInterval(sample, SAMPLE_MS).unref();

/* ---- reading, on the thread that answers a scrape ---- */

export interface ThreadFigures {
  thread: number;
  /** Whether its gauges are current (its heartbeat is recent). */
  live: boolean;
  figures: Float64Array;
}

/** Every thread's figures, read now. */
export function allThreads(now = Date.now()): ThreadFigures[] {
  own[layout.heartbeat] = now; // the answering thread is alive by definition
  return [...threads.values()].map((figures) => ({
    thread: figures[layout.thread],
    live: now - figures[layout.heartbeat] <= STALE_MS,
    figures,
  }));
}

export function writeSlot(protocol: WriteProtocol): number {
  return layout.writesAccepted + writeIndex[protocol];
}
export function refusedSlot(protocol: WriteProtocol, code: RefusalLabel): number {
  return layout.writesRefused + writeIndex[protocol] * REFUSAL_CODES.length + refusalIndex.get(code)!;
}
export function streamSlot(base: 'deliveries' | 'subscribers' | 'connections', protocol: StreamProtocol): number {
  return layout[base] + streamIndex[protocol];
}
