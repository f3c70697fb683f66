/**
 * The `readings` history: one reading per accepted, stored sensor write, committed by the group
 * commit just ahead of the state update (lib/resources/sensors.ts), so none can be missed and each belongs
 * to an acknowledged write. Non-retained MQTT publishes are ephemeral by design and leave no
 * reading.
 */
import { tables } from 'harperdb';
import { writer } from '../write-path/writer-identity.js';
import { timeKey } from '../write-path/server-time.js';
import { guardedTable } from '../access/guarded-table.js';
import { LIMITS } from '../rules/limits.js';
import { needsSortWorkaround, sortedSearch, type Query } from '../harper/sort-condition-workaround.js';
import type { HarperContext, InstanceBoundTableClass } from '../harper/types.js';
import { directWriter } from '../harper/direct-writer.js';
import type { ReadingRecord, SensorRecord } from '../../shared/records.js';

export type { ReadingRecord };

const ReadingsTable = tables.readings as unknown as InstanceBoundTableClass<ReadingRecord> & {
  setTTLExpiration(seconds: number): void;
};

/** Retention: READINGS_RETENTION_DAYS (default 7, as in schema.graphql). */
const retentionDays = Number(process.env.READINGS_RETENTION_DAYS ?? 7);
if (Number.isFinite(retentionDays) && retentionDays > 0) ReadingsTable.setTTLExpiration(retentionDays * 86_400);

/**
 * A reading's id starts with its server time (`timeKey`), so that new readings come last in the
 * table's key order: each group commit appends its readings to the last pages of LMDB's tree,
 * where ids led by the sensor put one into every sensor's range and dirtied a page per sensor in
 * every commit (bench/README.md: 4-10 % more persisted throughput). One sensor's readings are
 * found and ordered through the `sensorId` and `time` indexes.
 */
export function readingOf(record: SensorRecord): ReadingRecord {
  const reading: ReadingRecord = {
    id: `${timeKey(record.updatedAt)}@${record.id}@${writer()}`,
    sensorId: record.id,
    time: record.updatedAt,
    location: record.location,
    temperature: record.temperature,
  };
  if (record.time !== undefined) reading.deviceTime = record.time;
  if (record.humidity !== undefined) reading.humidity = record.humidity;
  if (record.battery !== undefined) reading.battery = record.battery;
  return reading;
}

const readingWriter = directWriter<ReadingRecord>(tables.readings);

/** Appends the reading within `context`'s transaction (the group commit's). */
export function appendReading(record: SensorRecord, context: HarperContext): unknown {
  const reading = readingOf(record);
  return readingWriter.put(reading.id, reading, context);
}

/**
 * The readings resource: queried over REST (by sensor, time range, sorted, paged, CSV); the policy
 * table lets nobody write it over a protocol.
 */
export class Readings extends guardedTable(ReadingsTable, {
  resource: 'readings',
  maxIdLength: LIMITS.maxTopicLength,
}) {
  search(query?: Query): AsyncIterable<ReadingRecord> {
    if (needsSortWorkaround(query))
      return sortedSearch(query!, (filterOnly) => super.search(filterOnly) as AsyncIterable<ReadingRecord>);
    return super.search(query) as AsyncIterable<ReadingRecord>;
  }
}
