/**
 * Rolling statistics per sensor (count, min, max, mean over the last hour and the last day, and
 * the last update), kept incrementally in per-minute buckets; a request sums at most 1,440 minutes
 * of buckets, never the readings themselves.
 *
 * Each writer (a worker thread of one Harper process, lib/clock.ts) folds readings into buckets of
 * its own, `<sensorId>/<minute>/<writer>`, in memory, and writes the buckets that changed once a
 * second in one transaction. So a reading costs no table operation for its statistics (writing a
 * bucket per reading took a read and a write in every reading's transaction, a large share of the
 * write path), and writers never contend for one record: a request adds the buckets of all writers,
 * on every node of a cluster (the buckets replicate like any table). The price, stated in the
 * README: another thread's or node's last second of readings may not be counted yet, and a crash
 * loses at most that second of statistics (the history itself is written with each reading).
 */
import { Resource, tables } from 'harperdb';
import { authorize } from './access.js';
import { writer } from './clock.js';
import { Refusal } from './errors.js';
import { transaction, type HarperContext, type InstanceBoundTableClass, type RequestTarget, type User } from './harper-types.js';
import { checkSensorId, type SensorRecord } from './sensor-rules.js';

const FIELDS = ['temperature', 'humidity', 'battery'] as const;
type Field = (typeof FIELDS)[number];

interface Aggregate {
  count: number;
  min: number;
  max: number;
  sum: number;
}

interface Bucket {
  id: string;
  sensorId: string;
  minute: number;
  fields: Partial<Record<Field, Aggregate>>;
  lastUpdate: number;
}

export interface WindowStats {
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
}

export interface SensorStats {
  sensorId: string;
  lastUpdate: number | null;
  hour: Record<Field, WindowStats>;
  day: Record<Field, WindowStats>;
}

interface BucketSearch {
  search(query: { conditions: { attribute: string; value: unknown; comparator?: string }[] }, context?: unknown): AsyncIterable<Bucket>;
}
const BucketsTable = tables.statBuckets as unknown as InstanceBoundTableClass<Bucket> & BucketSearch;

const minuteOf = (ms: number) => Math.floor(ms / 60_000);
const FLUSH_MS = 1_000;

/** This writer's current bucket per sensor (the whole truth about its own buckets). */
const current = new Map<string, Bucket>();
/** Buckets changed since the last flush. */
const dirty = new Map<string, Bucket>();
let flushTimer: NodeJS.Timeout | undefined;
let flushing = false;

/**
 * Writes the changed buckets, a few per transaction with a turn of the event loop between: one
 * transaction of every sensor's bucket held the thread for milliseconds at once, which showed as
 * a once-a-second spike in the delivery latency of everything else on the thread.
 */
const FLUSH_CHUNK = 16;

async function flush(): Promise<void> {
  flushTimer = undefined;
  flushing = true;
  while (dirty.size > 0) {
    const buckets: Bucket[] = [];
    for (const bucket of dirty.values()) {
      buckets.push(bucket);
      dirty.delete(bucket.id);
      if (buckets.length === FLUSH_CHUNK) break;
    }
    const context: HarperContext = {};
    try {
      await transaction(context, async () => {
        for (const bucket of buckets) await BucketsTable.put(bucket, context);
      });
    } catch (error) {
      // Statistics are a summary: keep the newest version of each bucket for the next attempt.
      for (const bucket of buckets) if (!dirty.has(bucket.id)) dirty.set(bucket.id, bucket);
      console.error('statistics: writing buckets failed; retrying with the next flush', error);
      break;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  flushing = false;
  schedule();
}

function schedule(): void {
  if (flushTimer || flushing || dirty.size === 0) return;
  flushTimer = setTimeout(() => void flush(), FLUSH_MS);
  flushTimer.unref();
}

/** Folds one stored reading into this writer's bucket of its sensor for the current minute. */
export function updateStats(record: SensorRecord): void {
  const minute = minuteOf(record.updatedAt);
  const previous = current.get(record.id);
  const existing = previous?.minute === minute ? previous : undefined;
  // A new object: a flush under way may still hold the previous version of this bucket.
  const fields: Partial<Record<Field, Aggregate>> = existing ? { ...existing.fields } : {};
  for (const field of FIELDS) {
    const value = record[field];
    if (typeof value !== 'number') continue;
    const before = fields[field];
    fields[field] = before
      ? { count: before.count + 1, min: Math.min(before.min, value), max: Math.max(before.max, value), sum: before.sum + value }
      : { count: 1, min: value, max: value, sum: value };
  }
  const bucket: Bucket = { id: `${record.id}/${minute}/${writer()}`, sensorId: record.id, minute, fields, lastUpdate: record.updatedAt };
  current.set(record.id, bucket);
  dirty.set(bucket.id, bucket);
  schedule();
}

function summarise(buckets: Bucket[], field: Field): WindowStats {
  let count = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const bucket of buckets) {
    const aggregate = bucket.fields?.[field];
    if (!aggregate) continue;
    count += aggregate.count;
    min = Math.min(min, aggregate.min);
    max = Math.max(max, aggregate.max);
    sum += aggregate.sum;
  }
  return count === 0 ? { count: 0, min: null, max: null, mean: null } : { count, min, max, mean: sum / count };
}

export async function statsOf(sensorId: string, now = Date.now()): Promise<SensorStats> {
  const thisMinute = minuteOf(now);
  const day: Bucket[] = [];
  const query = { conditions: [{ attribute: 'sensorId', value: sensorId }, { attribute: 'minute', comparator: 'greater_than', value: thisMinute - 1440 }] };
  const seen = new Map<string, Bucket>();
  // Harper's records expose nested values through getters: copy what is summed, field by field.
  for await (const bucket of BucketsTable.search(query)) seen.set(bucket.id, { id: bucket.id, sensorId, minute: bucket.minute, fields: bucket.fields, lastUpdate: bucket.lastUpdate });
  // This writer's buckets not yet flushed are newer than what is stored.
  for (const bucket of dirty.values()) if (bucket.sensorId === sensorId && bucket.minute > thisMinute - 1440) seen.set(bucket.id, bucket);
  day.push(...seen.values());
  const hour = day.filter((bucket) => bucket.minute > thisMinute - 60);
  const lastUpdate = day.reduce<number | null>((latest, bucket) => (latest === null || bucket.lastUpdate > latest ? bucket.lastUpdate : latest), null);
  const per = (buckets: Bucket[]) => Object.fromEntries(FIELDS.map((field) => [field, summarise(buckets, field)])) as Record<Field, WindowStats>;
  return { sensorId, lastUpdate, hour: per(hour), day: per(day) };
}

/** GET /stats/<sensorId>: the rolling statistics of one sensor. */
export class Stats extends (Resource as unknown as new (...args: never[]) => { getId(): unknown; getContext(): { user?: User } | undefined }) {
  async allowRead(user: User | undefined) {
    return authorize(user, 'stats', 'read', this.getId(), () => false);
  }

  async get(_target?: RequestTarget): Promise<SensorStats> {
    const id = this.getId();
    if (id == null || id === '') throw new Refusal({ error: 'invalid_id', field: 'id', message: 'ask for one sensor: /stats/<sensorId>' });
    return statsOf(checkSensorId(id));
  }
}
