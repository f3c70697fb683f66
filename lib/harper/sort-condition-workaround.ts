/**
 * A workaround for a Harper 4.7 query bug, observed on `readings`: when a query sorts by an
 * attribute that also carries a condition, one of that attribute's conditions is dropped once the
 * table holds more than a few records (`?sensorId=a&time=ge=T1&time=lt=T2&sort(time)` returned
 * readings before T1; the same query without `sort` was right).
 *
 * For such queries we let Harper filter without sorting, then sort, offset and limit here. The
 * rows held in memory are those the conditions select, so the conditions must be narrow (one
 * sensor, a time range): a sort has to see every selected row before it can return the first.
 * At most MAX_SORTED_ROWS are read (`/readings/?time=gt=0&sort(time)&limit(1)`
 * loaded every reading of the table before sorting); a query selecting more is refused with 400
 * `query_too_broad`, before anything is sent, telling the client to narrow it. Queries without
 * that combination go to Harper untouched (Harper sorts by an index and streams).
 */
import { Refusal } from '../rules/errors.js';

/** Rows a sorted query may select (env QUERY_MAX_SORTED_ROWS). */
export const MAX_SORTED_ROWS = Number(process.env.QUERY_MAX_SORTED_ROWS ?? 10_000);

export interface Condition {
  attribute?: string | string[];
  comparator?: string;
  value?: unknown;
  conditions?: Condition[];
}

export interface Sort {
  attribute?: string | string[];
  descending?: boolean;
  next?: Sort;
}

export interface Query {
  conditions?: Condition[];
  sort?: Sort;
  limit?: number;
  offset?: number;
  [key: string]: unknown;
}

function attributesOf(conditions: Condition[] | undefined, into = new Set<string>()): Set<string> {
  for (const condition of conditions ?? []) {
    if (typeof condition.attribute === 'string') into.add(condition.attribute);
    attributesOf(condition.conditions, into);
  }
  return into;
}

/** Whether Harper would mishandle this query (a sort on a conditioned attribute). */
export function needsSortWorkaround(query: Query | undefined): boolean {
  const attribute = query?.sort?.attribute;
  return typeof attribute === 'string' && attributesOf(query?.conditions).has(attribute);
}

function compare(a: Record<string, unknown>, b: Record<string, unknown>, sort: Sort | undefined): number {
  for (let level = sort; level; level = level.next) {
    const key = level.attribute as string;
    const [x, y] = [a[key], b[key]] as [number | string | undefined, number | string | undefined];
    if (x === y) continue;
    const order = x === undefined ? -1 : y === undefined ? 1 : x < y ? -1 : 1;
    return level.descending ? -order : order;
  }
  return 0;
}

function tooBroad(attribute: string): Refusal {
  return new Refusal({
    error: 'query_too_broad',
    field: attribute,
    rule: `a sorted query selects at most ${MAX_SORTED_ROWS} rows`,
    message: `this query sorts by ${attribute} and selects more than ${MAX_SORTED_ROWS} rows; narrow it (e.g. sensorId=<id> and a ${attribute} range no wider than needed)`,
  });
}

/** Runs `search` without sort/offset/limit, then applies them to the filtered rows. */
async function sortedRows<Row>(query: Query, search: (query: Query) => AsyncIterable<Row>): Promise<Row[]> {
  const { sort, limit, offset, ...filterOnly } = query;
  const rows: Row[] = [];
  // Harper stops reading at this limit: a query selecting too much costs MAX_SORTED_ROWS rows.
  for await (const row of search({ ...filterOnly, limit: MAX_SORTED_ROWS + 1 })) {
    if (rows.length === MAX_SORTED_ROWS) throw tooBroad(String(sort?.attribute));
    rows.push(row);
  }
  // Harper's record objects expose properties through getters; compare reads them by name.
  rows.sort((a, b) => compare(a as Record<string, unknown>, b as Record<string, unknown>, sort));
  const start = offset ?? 0;
  return rows.slice(start, limit === undefined ? undefined : start + limit);
}

async function* each<Row>(rows: Promise<Row[]>): AsyncIterable<Row> {
  yield* await rows;
}

/**
 * The sorted rows, as an async iterable that is also a promise of one. Harper awaits what a
 * `search` returns before it answers: the rows are collected (or the query refused) first, so a
 * refusal is a 400 with its JSON body rather than an error inside a 200 response already sent.
 */
export function sortedSearch<Row>(
  query: Query,
  search: (query: Query) => AsyncIterable<Row>,
): AsyncIterable<Row> & PromiseLike<AsyncIterable<Row>> {
  let rows: Promise<Row[]> | undefined;
  const collected = () => (rows ??= sortedRows(query, search));
  return {
    [Symbol.asyncIterator]: () => each(collected())[Symbol.asyncIterator](),
    then(onFulfilled, onRejected) {
      return collected()
        .then((sorted) => each(Promise.resolve(sorted)))
        .then(onFulfilled, onRejected);
    },
  };
}
