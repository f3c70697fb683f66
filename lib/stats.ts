/**
 * Rolling statistics per sensor (count, min, max, mean over the last hour and the last day, and
 * the last update), kept current incrementally: each reading updates one per-minute bucket of its
 * sensor (one read and one write in the reading's transaction), and a request sums the last 60 or
 * 1,440 buckets. Cost per reading: one bucket upsert, whatever the history's size; cost per request:
 * at most 1,440 small bucket records, never the readings themselves.
 */
import { Resource, tables } from 'harperdb';
import { authorize } from './access.js';
import { writer } from './clock.js';
import { Refusal } from './errors.js';
import type { InstanceBoundTableClass, RequestTarget, User } from './harper-types.js';
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

/**
 * The bucket this thread last wrote per sensor. Writes of one sensor are queued (lib/serial.ts),
 * but a committed bucket is not always visible to the next transaction's read at once; this one is.
 */
const latest = new Map<string, Bucket>();

/**
 * Folds one reading into its sensor's bucket for the current minute. Each node keeps buckets of
 * its own (the node is part of the id) and they replicate: two nodes adding to one shared bucket
 * would overwrite each other's counts (replication keeps the latest write of a record), while
 * distinct buckets are simply summed by `statsOf` on every node.
 */
export async function updateStats(record: SensorRecord, context: unknown): Promise<void> {
  const minute = minuteOf(record.updatedAt);
  const id = `${record.id}/${minute}/${writer()}`;
  const stored = await BucketsTable.get(id, context);
  const mine = latest.get(record.id);
  const existing = mine?.id === id && (!stored || mine.lastUpdate >= stored.lastUpdate) ? mine : stored;
  const fields: Partial<Record<Field, Aggregate>> = {};
  for (const field of FIELDS) {
    // Read property by property: Harper's record objects expose nested values through getters,
    // which a spread would not copy.
    const previous = existing?.fields?.[field];
    const before = previous ? { count: previous.count, min: previous.min, max: previous.max, sum: previous.sum } : undefined;
    const value = record[field];
    if (typeof value !== 'number') {
      if (before) fields[field] = before;
      continue;
    }
    fields[field] = before
      ? { count: before.count + 1, min: Math.min(before.min, value), max: Math.max(before.max, value), sum: before.sum + value }
      : { count: 1, min: value, max: value, sum: value };
  }
  const bucket: Bucket = { id, sensorId: record.id, minute, fields, lastUpdate: record.updatedAt };
  latest.set(record.id, bucket);
  await BucketsTable.put(bucket, context);
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
  for await (const bucket of BucketsTable.search(query)) day.push({ fields: bucket.fields, minute: bucket.minute, lastUpdate: bucket.lastUpdate } as Bucket);
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
