/**
 * GET /metrics: the node's figures (lib/metrics/counters.ts) in the Prometheus text exposition format
 * (0.0.4, which Prometheus and OpenMetrics scrapers both read), for the admin and the `monitor`
 * role; never anonymous (lib/access/policy.ts).
 *
 * Formatted here rather than with prom-client. prom-client's registry lives in one thread and its
 * own cross-process aggregation is built for Node's `cluster` module, so the figures of Harper's
 * worker threads would have to be gathered by us anyway (lib/metrics/counters.ts does, through shared
 * memory); its labelled counters look their series up by a string key on every increment, more
 * than a hot path should pay; and the deployed component ships without dependencies
 * (scripts/deploy.ts installs nothing on the target). What is left is a page of text, checked by
 * `promtool check metrics` in test/metrics.test.ts.
 *
 * Labels are of low cardinality only: protocol, refusal code, cut-off reason, histogram bucket,
 * worker thread, cluster peer. Never a sensor, user or topic.
 */
import { Resource, server } from 'harperdb';
import { authorize } from '../access/policy.js';
import {
  COMMIT_BUCKETS,
  CUTOFF_REASONS,
  REFUSAL_CODES,
  ROLLUP_RESOLUTIONS,
  SLOTS,
  STREAM_PROTOCOLS,
  WRITE_PROTOCOLS,
  allThreads,
  refusedSlot,
  streamSlot,
  writeSlot,
  type ThreadFigures,
} from '../metrics/counters.js';
import type { User } from '../harper/types.js';

type Labels = Record<string, string>;
interface Sample {
  labels?: Labels;
  value: number;
  suffix?: string;
}

const escape = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: Sample[]): string {
  let text = `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
  for (const { labels, value, suffix } of samples) {
    const pairs = labels ? Object.entries(labels).map(([key, label]) => `${key}="${escape(label)}"`) : [];
    text += `${name}${suffix ?? ''}${pairs.length ? `{${pairs.join(',')}}` : ''} ${Number.isFinite(value) ? value : 0}\n`;
  }
  return text;
}

const sum = (threads: ThreadFigures[], slot: number) =>
  threads.reduce((total, thread) => total + thread.figures[slot], 0);

/** Each peer's connection state from Harper's `cluster_status` (none on a single node). */
interface ClusterStatus {
  connections?: { name?: string; url?: string; database_sockets?: { connected?: boolean }[] }[];
}

async function peers(): Promise<Sample[]> {
  const operation = (
    server as unknown as {
      operation?: (request: object, context?: unknown, authorize?: boolean) => Promise<ClusterStatus>;
    }
  ).operation;
  if (!operation) return [];
  try {
    const status = await operation({ operation: 'cluster_status' }, undefined, false);
    return (status?.connections ?? []).map((connection) => {
      const sockets = connection.database_sockets ?? [];
      const connected = sockets.length > 0 && sockets.every((socket) => socket.connected === true);
      return { labels: { peer: String(connection.name ?? connection.url ?? 'unknown') }, value: connected ? 1 : 0 };
    });
  } catch {
    return [];
  }
}

export async function renderMetrics(): Promise<string> {
  const threads = allThreads();
  const live = threads.filter((thread) => thread.live);
  const out: string[] = [];
  out.push(
    family(
      'iot_writes_accepted_total',
      'counter',
      'Writes accepted (stored, or fanned out for non-retained MQTT publishes), by protocol.',
      WRITE_PROTOCOLS.map((protocol) => ({ labels: { protocol }, value: sum(threads, writeSlot(protocol)) })),
    ),
    family(
      'iot_writes_refused_total',
      'counter',
      'Writes refused, by protocol and refusal code (lib/rules/errors.ts; unauthorized: no credentials).',
      WRITE_PROTOCOLS.flatMap((protocol) =>
        REFUSAL_CODES.map((code) => ({ labels: { protocol, code }, value: sum(threads, refusedSlot(protocol, code)) })),
      ),
    ),
    family(
      'iot_deliveries_total',
      'counter',
      'Messages sent to subscribers, by protocol (MQTT PUBLISH packets, SSE events, WebSocket frames including write replies).',
      STREAM_PROTOCOLS.map((protocol) => ({
        labels: { protocol },
        value: sum(threads, streamSlot('deliveries', protocol)),
      })),
    ),
    family(
      'iot_subscribers',
      'gauge',
      'Subscriptions open now, by protocol.',
      STREAM_PROTOCOLS.map((protocol) => ({
        labels: { protocol },
        value: sum(live, streamSlot('subscribers', protocol)),
      })),
    ),
    family(
      'iot_connections',
      'gauge',
      'Connections open now, by protocol (MQTT over WebSocket counts as mqtt; sse: open event streams).',
      STREAM_PROTOCOLS.map((protocol) => ({
        labels: { protocol },
        value:
          protocol === 'sse'
            ? sum(live, streamSlot('subscribers', 'sse'))
            : sum(live, streamSlot('connections', protocol)),
      })),
    ),
    family(
      'iot_slow_consumer_cutoffs_total',
      'counter',
      'Subscribers cut off for falling behind, by reason (lib/streams/slow-consumers.ts).',
      CUTOFF_REASONS.map((reason, i) => ({ labels: { reason }, value: sum(threads, SLOTS.cutoffs + i) })),
    ),
    family(
      'iot_write_queue_depth_max',
      'gauge',
      'Deepest per-sensor write queue (writes waiting for a group-commit batch) over the last second, on any thread.',
      [{ value: Math.max(0, ...live.map((thread) => thread.figures[SLOTS.queueDepthMax])) }],
    ),
  );
  const bucketSamples: Sample[] = [];
  let cumulative = 0;
  for (const [i, bound] of COMMIT_BUCKETS.entries()) {
    cumulative += sum(threads, SLOTS.commitBuckets + i);
    bucketSamples.push({ suffix: '_bucket', labels: { le: String(bound) }, value: cumulative });
  }
  cumulative += sum(threads, SLOTS.commitBuckets + COMMIT_BUCKETS.length);
  bucketSamples.push(
    { suffix: '_bucket', labels: { le: '+Inf' }, value: cumulative },
    { suffix: '_sum', value: sum(threads, SLOTS.commitSum) },
    { suffix: '_count', value: cumulative },
  );
  out.push(
    family(
      'iot_commit_duration_seconds',
      'histogram',
      'Time from forming a group-commit batch of sensor writes to its commit, once per batch.',
      bucketSamples,
    ),
    family('iot_readings_stored_total', 'counter', 'Readings stored (one per accepted, stored sensor write).', [
      { value: sum(threads, SLOTS.readingsStored) },
    ]),
    family('iot_alerts_stored_total', 'counter', 'Alerts written (changes of state of a rule for a sensor).', [
      { value: sum(threads, SLOTS.alertsStored) },
    ]),
    family(
      'iot_rollup_parts_written_total',
      'counter',
      'Rollup parts written (one per sensor, period and writer thread, each time a flush stores its changes).',
      ROLLUP_RESOLUTIONS.map((resolution, i) => ({
        labels: { resolution },
        value: sum(threads, SLOTS.rollupPartsWritten + i),
      })),
    ),
    family('process_resident_memory_bytes', 'gauge', 'Resident memory of the Harper process (all threads).', [
      { value: process.memoryUsage.rss() },
    ]),
    family(
      'iot_event_loop_delay_seconds',
      'gauge',
      'Event-loop delay of each worker thread over the last second: median, 99th percentile and maximum.',
      live.flatMap((thread) =>
        (['p50', 'p99', 'max'] as const).map((stat) => ({
          labels: { thread: String(thread.thread), stat },
          value:
            thread.figures[
              stat === 'p50' ? SLOTS.loopDelayP50 : stat === 'p99' ? SLOTS.loopDelayP99 : SLOTS.loopDelayMax
            ],
        })),
      ),
    ),
    family('iot_worker_threads', 'gauge', 'Worker threads whose figures are included.', [{ value: live.length }]),
  );
  const peerSamples = await peers();
  if (peerSamples.length > 0)
    out.push(
      family(
        'iot_cluster_peer_connected',
        'gauge',
        "1 when replication with the peer is connected (every database), else 0 (Harper's cluster_status).",
        peerSamples,
      ),
    );
  return out.join('');
}

export class Metrics extends (Resource as unknown as new (...args: never[]) => object) {
  allowRead(user: User | undefined) {
    return authorize(user, 'metrics', 'read', null, () => false);
  }

  async get() {
    return {
      status: 200,
      headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' },
      body: await renderMetrics(),
    };
  }
}
