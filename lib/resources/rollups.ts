/**
 * Long-term history: per-minute and per-hour rollups of every sensor field (count, min, max, mean,
 * last), maintained as readings are stored, never by scanning them. They also feed the rolling
 * statistics (lib/resources/stats.ts reads the minute rollups).
 *
 * Each writer (a worker thread of one Harper process, lib/write-path/writer-identity.ts) folds the readings it commits
 * into parts of its own, `<sensorId>@<period start>@<writer>`, one per sensor and period, in
 * memory: a reading costs a map look-up and a few comparisons, no table operation, no promise, and
 * no allocation except when a sensor enters a new period. The parts that changed are written in
 * the background: minute parts once a second (the statistics stay that fresh), hour parts once a
 * minute (ROLLUPS_HOUR_FLUSH_SECONDS). Writers never contend for one record, and the parts
 * replicate like any table, so every node holds every node's parts.
 *
 * A query (`/rollups/?sensorId=101&resolution=1h&time=ge=...`) merges the parts of one period
 * across writers as it reads them: the ids put one sensor's parts in time order with the parts of
 * one period next to each other, so the merge streams over one range of the table and holds one
 * period at a time. `last` is the value of the latest reading by time, whichever writer stored it.
 *
 * The price: the newest second of minute rollups and the newest minute of hour rollups written by
 * another thread or node (or this one) may not be in an answer yet, and a crash loses at most that
 * much of them (readings themselves are written with each write). A stop announced with
 * POST /server-notice (what `npm start` does) writes every part first.
 *
 * Retention: 90 days of minutes and two years of hours by default (schema.graphql), overridden at
 * start by ROLLUPS_MINUTE_RETENTION_DAYS and ROLLUPS_HOUR_RETENTION_DAYS.
 */
import { Resource, tables } from 'harperdb';
import { authorize } from '../access/policy.js';
import { writer } from '../write-path/writer-identity.js';
import { countRollupPartsWritten } from '../metrics/counters.js';
import { Refusal } from '../rules/errors.js';
import { transaction, type HarperContext, type RequestTarget, type User } from '../harper/types.js';
import { directWriter, type DirectWriter } from '../harper/direct-writer.js';
import type { Condition, Query } from '../harper/sort-condition-workaround.js';
import { MEASURES, type Measure, type Resolution, type Rollup, type SensorRecord } from '../../shared/records.js';

export type { Resolution, Rollup };

/** The fields a rollup summarises: every measured field of a reading. */
export const FIELDS = MEASURES;
export type Field = Measure;

export const RESOLUTIONS: readonly Resolution[] = ['1m', '1h'];

/** One writer's aggregate of one field over one period. */
export interface FieldPart {
  count: number;
  min: number;
  max: number;
  sum: number;
  /** The value of the latest reading by time, and that time. */
  last: number;
  lastTime: number;
}

/** One writer's rollup of one sensor over one period, as stored. */
export interface RollupPart {
  /** <sensorId>@<period start, 15 digits>@<writer> */
  id: string;
  sensorId: string;
  /** Start of the period, ms since the epoch. */
  time: number;
  fields: Partial<Record<Field, FieldPart>>;
  /** Server time of the latest reading folded in. */
  lastUpdate: number;
}

interface PartStore {
  getRange(options: {
    start: string;
    end: string;
    reverse?: boolean;
  }): Iterable<{ key: unknown; value: RollupPart | null | undefined }>;
}
interface PartTable {
  setTTLExpiration(seconds: number): void;
  primaryStore: PartStore;
}

interface Level {
  resolution: Resolution;
  periodMs: number;
  table: PartTable;
  /** Writes a part whole, without Harper loading the stored one first. */
  partWriter: DirectWriter<RollupPart>;
  flushMs: number;
  /** This writer's current part per sensor. */
  current: Map<string, RollupPart>;
  /** Parts changed since they were last written. */
  dirty: Set<RollupPart>;
  timer?: NodeJS.Timeout;
  flushing?: Promise<void>;
}

const seconds = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

function level(
  resolution: Resolution,
  periodMs: number,
  table: unknown,
  flushMs: number,
  retentionVariable: string,
): Level {
  const partTable = table as PartTable;
  const days = Number(process.env[retentionVariable]);
  if (Number.isFinite(days) && days > 0) partTable.setTTLExpiration(days * 86_400);
  const partWriter = directWriter<RollupPart>(table);
  return { resolution, periodMs, table: partTable, partWriter, flushMs, current: new Map(), dirty: new Set() };
}

const LEVELS: Record<Resolution, Level> = {
  '1m': level('1m', 60_000, tables.rollupMinutes, 1_000, 'ROLLUPS_MINUTE_RETENTION_DAYS'),
  '1h': level(
    '1h',
    3_600_000,
    tables.rollupHours,
    seconds('ROLLUPS_HOUR_FLUSH_SECONDS', 60) * 1_000,
    'ROLLUPS_HOUR_RETENTION_DAYS',
  ),
};

/** Period starts as fixed-width digits, so that ids sort by time (up to the year 33658). */
const pad = (time: number) => String(time).padStart(15, '0');
const periodKey = (sensorId: string, time: number) => `${sensorId}@${pad(time)}`;

function fold(level: Level, record: SensorRecord): void {
  const time = record.updatedAt;
  const start = time - (time % level.periodMs);
  let part = level.current.get(record.id);
  if (part?.time !== start) {
    part = {
      id: `${periodKey(record.id, start)}@${writer()}`,
      sensorId: record.id,
      time: start,
      fields: {},
      lastUpdate: time,
    };
    level.current.set(record.id, part);
  }
  for (const field of FIELDS) {
    const value = record[field];
    if (typeof value !== 'number') continue;
    const aggregate = part.fields[field];
    if (!aggregate) {
      part.fields[field] = { count: 1, min: value, max: value, sum: value, last: value, lastTime: time };
      continue;
    }
    aggregate.count++;
    if (value < aggregate.min) aggregate.min = value;
    if (value > aggregate.max) aggregate.max = value;
    aggregate.sum += value;
    if (time >= aggregate.lastTime) {
      aggregate.last = value;
      aggregate.lastTime = time;
    }
  }
  if (time > part.lastUpdate) part.lastUpdate = time;
  level.dirty.add(part);
  if (!level.timer && !level.flushing) {
    level.timer = setTimeout(() => void flush(level), level.flushMs);
    level.timer.unref();
  }
}

/** Folds one committed reading into this writer's minute and hour parts (the group commit's hook). */
export function foldReading(record: SensorRecord): void {
  fold(LEVELS['1m'], record);
  fold(LEVELS['1h'], record);
}

/** A copy to write: the part itself keeps changing while Harper writes it. */
function snapshot(part: RollupPart): RollupPart {
  const fields: Partial<Record<Field, FieldPart>> = {};
  for (const field of FIELDS) {
    const aggregate = part.fields[field];
    if (aggregate) fields[field] = { ...aggregate };
  }
  return { id: part.id, sensorId: part.sensorId, time: part.time, fields, lastUpdate: part.lastUpdate };
}

/**
 * Writes the changed parts, a few per transaction with a turn of the event loop between: one
 * transaction of every sensor's part held the thread for milliseconds at once, which showed as a
 * spike in the delivery latency of everything else on the thread.
 */
const FLUSH_CHUNK = 16;

function flush(level: Level): Promise<void> {
  if (level.timer) clearTimeout(level.timer);
  level.timer = undefined;
  level.flushing ??= (async () => {
    try {
      while (level.dirty.size > 0) {
        const parts: RollupPart[] = [];
        for (const part of level.dirty) {
          parts.push(snapshot(part));
          level.dirty.delete(part);
          if (parts.length === FLUSH_CHUNK) break;
        }
        const context: HarperContext = {};
        try {
          await transaction(context, async () => {
            for (const part of parts) await level.partWriter.put(part.id, part, context);
          });
          countRollupPartsWritten(level.resolution, parts.length);
        } catch (error) {
          // The parts in memory are the whole truth: mark them for the next attempt.
          for (const part of parts) {
            const live = level.current.get(part.sensorId);
            if (live?.id === part.id) level.dirty.add(live);
          }
          console.error(`rollups (${level.resolution}): writing parts failed; retrying with the next flush`, error);
          break;
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      level.flushing = undefined;
      if (level.dirty.size > 0 && !level.timer) {
        level.timer = setTimeout(() => void flush(level), level.flushMs);
        level.timer.unref();
      }
    }
  })();
  return level.flushing;
}

/** Writes every changed part now (before the server stops). */
export async function flushAllRollups(): Promise<void> {
  for (const level of Object.values(LEVELS)) {
    await level.flushing;
    await flush(level);
  }
}

/** This writer's parts of `sensorId` not written yet (newer than what is stored). */
export function unflushedParts(resolution: Resolution, sensorId: string): RollupPart[] {
  return [...LEVELS[resolution].dirty].filter((part) => part.sensorId === sensorId).map(snapshot);
}

/** A plain copy of a stored part (Harper's records may expose nested values through getters). */
function plainPart(value: RollupPart): RollupPart {
  const fields: Partial<Record<Field, FieldPart>> = {};
  for (const field of FIELDS) {
    const aggregate = value.fields?.[field];
    if (aggregate)
      fields[field] = {
        count: aggregate.count,
        min: aggregate.min,
        max: aggregate.max,
        sum: aggregate.sum,
        last: aggregate.last,
        lastTime: aggregate.lastTime,
      };
  }
  return { id: value.id, sensorId: value.sensorId, time: value.time, fields, lastUpdate: value.lastUpdate };
}

/**
 * The stored parts of one sensor whose period starts in [from, to), in time order (or reversed),
 * read straight from the table's ordered store: one range, nothing else scanned.
 */
export function* storedParts(
  resolution: Resolution,
  sensorId: string,
  from: number,
  to: number,
  reverse = false,
): Generator<RollupPart> {
  const low = periodKey(sensorId, Math.max(0, from));
  const high = periodKey(sensorId, Math.min(to, 1e15 - 1));
  const range = reverse ? { start: high, end: low, reverse: true } : { start: low, end: high };
  for (const { value } of LEVELS[resolution].table.primaryStore.getRange(range)) {
    if (value) yield plainPart(value);
  }
}

// --- The rollups resource ---------------------------------------------------------------------

const COLUMNS = [
  'id',
  'sensorId',
  'resolution',
  'time',
  ...FIELDS.flatMap((field) => ['Count', 'Min', 'Max', 'Mean', 'Last'].map((stat) => `${field}${stat}`)),
];

/** Merges one period's parts (of several writers). */
export function mergeParts(parts: RollupPart[], resolution: Resolution): Rollup {
  const first = parts[0];
  const rollup = {
    id: `${first.sensorId}@${resolution}@${first.time}`,
    sensorId: first.sensorId,
    resolution,
    time: first.time,
  } as Rollup;
  for (const field of FIELDS) {
    let count = 0;
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let last: FieldPart | undefined;
    let lastWriter = '';
    for (const part of parts) {
      const aggregate = part.fields[field];
      if (!aggregate) continue;
      count += aggregate.count;
      min = Math.min(min, aggregate.min);
      max = Math.max(max, aggregate.max);
      sum += aggregate.sum;
      // Latest reading by time; two writers' readings of the same instant: the greater writer id,
      // the same order as the readings' own ids.
      if (
        !last ||
        aggregate.lastTime > last.lastTime ||
        (aggregate.lastTime === last.lastTime && part.id > lastWriter)
      ) {
        last = aggregate;
        lastWriter = part.id;
      }
    }
    rollup[`${field}Count`] = count;
    rollup[`${field}Min`] = count ? min : null;
    rollup[`${field}Max`] = count ? max : null;
    rollup[`${field}Mean`] = count ? sum / count : null;
    rollup[`${field}Last`] = last ? last.last : null;
  }
  return rollup;
}

function invalidQuery(field: string, message: string, allowed?: readonly string[]): Refusal {
  return new Refusal({ error: 'invalid_query', field, message, ...(allowed ? { allowed } : {}) });
}

interface RollupQuery {
  sensorId: string;
  resolution: Resolution;
  from: number;
  to: number;
  descending: boolean;
  offset: number;
  limit: number;
  select?: string[];
}

const COMPARATORS: Record<string, (value: number, range: { from: number; to: number }) => void> = {
  equals: (value, range) => (
    (range.from = Math.max(range.from, Math.ceil(value))),
    (range.to = Math.min(range.to, Math.floor(value) + 1))
  ),
  greater_than_equal: (value, range) => void (range.from = Math.max(range.from, Math.ceil(value))),
  greater_than: (value, range) => void (range.from = Math.max(range.from, Math.floor(value) + 1)),
  less_than: (value, range) => void (range.to = Math.min(range.to, Math.ceil(value))),
  less_than_equal: (value, range) => void (range.to = Math.min(range.to, Math.floor(value) + 1)),
};
COMPARATORS.eq = COMPARATORS.equals;
COMPARATORS.ge = COMPARATORS.greater_than_equal;
COMPARATORS.gt = COMPARATORS.greater_than;
COMPARATORS.lt = COMPARATORS.less_than;
COMPARATORS.le = COMPARATORS.less_than_equal;

/** Reads the REST query: one sensor, one resolution, a time range; sort by time, limit, select. */
export function parseRollupQuery(query: Query & { select?: unknown; operator?: string }): RollupQuery {
  let sensorId: string | undefined;
  let resolution: Resolution | undefined;
  const range = { from: 0, to: 1e15 };
  if (query.operator && query.operator.toLowerCase() !== 'and')
    throw invalidQuery('operator', 'conditions of a rollup query are combined with AND only');
  for (const condition of (query.conditions ?? []) as Condition[]) {
    const attribute = Array.isArray(condition.attribute) ? condition.attribute.join('.') : condition.attribute;
    const comparator = condition.comparator ?? 'equals';
    if (condition.conditions || attribute === undefined)
      throw invalidQuery(
        'conditions',
        'a rollup query takes plain conditions: sensorId=<id>&resolution=1m|1h&time=ge=<ms>&time=lt=<ms>',
      );
    if (attribute === 'sensorId' || attribute === 'resolution') {
      if (comparator !== 'equals' && comparator !== 'eq')
        throw invalidQuery(attribute, `${attribute} takes an exact value (${attribute}=...)`);
      const value = String(condition.value);
      if (attribute === 'sensorId') sensorId = value;
      else if ((RESOLUTIONS as readonly string[]).includes(value)) resolution = value as Resolution;
      else throw invalidQuery('resolution', `resolution must be one of ${RESOLUTIONS.join(', ')}`, RESOLUTIONS);
    } else if (attribute === 'time') {
      const apply = COMPARATORS[comparator];
      const value = Number(condition.value);
      if (!apply) throw invalidQuery('time', `time takes =, =ge=, =gt=, =le= or =lt= (not ${comparator})`);
      if (!Number.isFinite(value)) throw invalidQuery('time', 'time is milliseconds since the epoch');
      apply(value, range);
    } else {
      throw invalidQuery(attribute, `rollups are queried by sensorId, resolution and time, not by ${attribute}`, [
        'sensorId',
        'resolution',
        'time',
      ]);
    }
  }
  if (sensorId === undefined)
    throw invalidQuery('sensorId', 'a rollup query names one sensor: /rollups/?sensorId=<id>&resolution=1m|1h');
  if (resolution === undefined)
    throw invalidQuery(
      'resolution',
      `a rollup query names a resolution: resolution=${RESOLUTIONS.join(' or resolution=')}`,
      RESOLUTIONS,
    );
  // A RequestTarget is a URLSearchParams, whose own `sort` method stands there when no sort was asked.
  const sort = typeof query.sort === 'object' ? query.sort : undefined;
  const sortAttribute = Array.isArray(sort?.attribute) ? sort?.attribute.join('.') : sort?.attribute;
  if (sort && (sortAttribute !== 'time' || sort.next))
    throw invalidQuery('sort', 'rollups sort by time only: sort(time) or sort(-time)');
  let select: string[] | undefined;
  if (query.select !== undefined) {
    const names = (Array.isArray(query.select) ? query.select : [query.select]).map((name) =>
      String(typeof name === 'object' && name !== null ? (name as { name?: unknown }).name : name),
    );
    const unknown = names.filter((name) => !COLUMNS.includes(name));
    if (unknown.length > 0) throw invalidQuery('select', `unknown column(s): ${unknown.join(', ')}`, COLUMNS);
    select = names;
  }
  return {
    sensorId,
    resolution,
    from: range.from,
    to: range.to,
    descending: sort?.descending === true,
    offset: query.offset ?? 0,
    limit: query.limit ?? Infinity,
    select,
  };
}

/**
 * Harper parses a query string into conditions only when it holds more than `name=value` pairs
 * (an operator such as `=ge=`, a `sort(...)`); plain pairs stay URL parameters: each is an
 * equality condition.
 */
function queryOf(target: RequestTarget | undefined): Query & { select?: unknown; operator?: string } {
  if (!target) return {};
  const parsed = target as unknown as Query & { select?: unknown; operator?: string };
  if (parsed.conditions) return parsed;
  const conditions: Condition[] = [];
  if (target instanceof URLSearchParams)
    for (const [attribute, value] of target.entries()) conditions.push({ attribute, comparator: 'equals', value });
  return { ...parsed, conditions };
}

/** How many parts are read before the thread is given to other work for a turn. */
const YIELD_EVERY = 500;

async function* rollupsOf(query: RollupQuery): AsyncGenerator<Partial<Rollup>> {
  let group: RollupPart[] = [];
  let skipped = 0;
  let sent = 0;
  let read = 0;
  const emit = function* (): Generator<Partial<Rollup>> {
    if (group.length === 0) return;
    const parts = group;
    group = [];
    if (skipped < query.offset) {
      skipped++;
      return;
    }
    sent++;
    const rollup = mergeParts(parts, query.resolution);
    if (!query.select) yield rollup;
    else
      yield Object.fromEntries(
        query.select.map((column) => [column, (rollup as unknown as Record<string, unknown>)[column]]),
      ) as Partial<Rollup>;
  };
  if (query.limit <= 0) return;
  for (const part of storedParts(query.resolution, query.sensorId, query.from, query.to, query.descending)) {
    if (group.length > 0 && group[0].time !== part.time) {
      yield* emit();
      if (sent >= query.limit) return;
    }
    group.push(part);
    if (++read % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  yield* emit();
}

/**
 * GET /rollups/?sensorId=101&resolution=1h&time=ge=...&time=lt=...[&sort(-time)][&limit(n)][&select(...)]:
 * the merged rollups of one sensor, oldest first unless sorted by -time; `Accept: text/csv` for
 * CSV. Read-only: a resource without write methods, so Harper answers every write with 405.
 */
export class Rollups extends (Resource as unknown as new (...args: never[]) => { getId(): unknown }) {
  allowRead(user: User | undefined) {
    return authorize(user, 'rollups', 'read', null, () => false);
  }

  get(target?: RequestTarget): AsyncIterable<Partial<Rollup>> & { getColumns(): string[]; selectApplied: boolean } {
    if (this.getId() != null && this.getId() !== '') {
      throw invalidQuery(
        'id',
        'rollups are queried as a collection: /rollups/?sensorId=<id>&resolution=1m|1h&time=ge=<ms>',
      );
    }
    const query = parseRollupQuery(queryOf(target));
    const rows = rollupsOf(query) as AsyncGenerator<Partial<Rollup>> & {
      getColumns(): string[];
      selectApplied: boolean;
    };
    // Harper's CSV writer takes its header from here: every column, even when the first row lacks one.
    rows.getColumns = () => query.select ?? COLUMNS;
    // The rows are selected already: Harper would otherwise select from the iterable itself.
    rows.selectApplied = true;
    return rows;
  }
}
