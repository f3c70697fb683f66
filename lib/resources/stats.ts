/**
 * Rolling statistics per sensor (count, min, max, mean over the last hour and the last day, and
 * the last update), added up from the minute rollups (lib/resources/rollups.ts): a request sums at most
 * 1,440 minutes of parts, never the readings themselves. Each writer folds the readings it stores
 * into parts in memory and writes the minute parts that changed once a second; this writer's parts
 * not yet written are added from memory. The price, stated in the README: another thread's or
 * node's last second of readings may not be counted yet, and a crash loses at most that second of
 * statistics (the history itself is written with each reading).
 */
import { Resource } from 'harperdb';
import { authorize } from '../access/policy.js';
import { Refusal } from '../rules/errors.js';
import { FIELDS, storedParts, unflushedParts, type Field, type RollupPart } from './rollups.js';
import type { RequestTarget, User } from '../harper/types.js';
import { checkSensorId } from '../rules/sensors.js';
import type { SensorStats, WindowStats } from '../../shared/records.js';

export type { SensorStats, WindowStats };

const MINUTE = 60_000;

function summarise(buckets: RollupPart[], field: Field): WindowStats {
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
  const thisMinute = now - (now % MINUTE);
  const dayStart = thisMinute - 1439 * MINUTE;
  const seen = new Map<string, RollupPart>();
  for (const part of storedParts('1m', sensorId, dayStart, Infinity)) seen.set(part.id, part);
  // This writer's parts not yet written are newer than what is stored.
  for (const part of unflushedParts('1m', sensorId)) if (part.time >= dayStart) seen.set(part.id, part);
  const day = [...seen.values()];
  const hour = day.filter((part) => part.time > thisMinute - 60 * MINUTE);
  const lastUpdate = day.reduce<number | null>(
    (latest, part) => (latest === null || part.lastUpdate > latest ? part.lastUpdate : latest),
    null,
  );
  const per = (parts: RollupPart[]) =>
    Object.fromEntries(FIELDS.map((field) => [field, summarise(parts, field)])) as Record<Field, WindowStats>;
  return { sensorId, lastUpdate, hour: per(hour), day: per(day) };
}

/** GET /stats/<sensorId>: the rolling statistics of one sensor. */
export class Stats extends (Resource as unknown as new (...args: never[]) => {
  getId(): unknown;
  getContext(): { user?: User } | undefined;
}) {
  async allowRead(user: User | undefined) {
    return authorize(user, 'stats', 'read', this.getId(), () => false);
  }

  async get(_target?: RequestTarget): Promise<SensorStats> {
    const id = this.getId();
    if (id == null || id === '')
      throw new Refusal({ error: 'invalid_id', field: 'id', message: 'ask for one sensor: /stats/<sensorId>' });
    return statsOf(checkSensorId(id));
  }
}
