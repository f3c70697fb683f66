/**
 * A workaround for a Harper 4.7 query bug, observed on `readings`: when a query sorts by an
 * attribute that also carries a condition, one of that attribute's conditions is dropped once the
 * table holds more than a few records (`?sensorId=a&time=ge=T1&time=lt=T2&sort(time)` returned
 * readings before T1; the same query without `sort` was right).
 *
 * For such queries we let Harper filter without sorting, then sort, offset and limit here. The
 * rows held in memory are those the conditions select (e.g. one sensor's readings in a time range),
 * never the whole table. Queries without that combination go to Harper untouched.
 */

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

/** Runs `search` without sort/offset/limit, then applies them to the filtered rows. */
export async function* sortedSearch<Row>(query: Query, search: (query: Query) => AsyncIterable<Row>): AsyncIterable<Row> {
  const { sort, limit, offset, ...filterOnly } = query;
  const rows: Row[] = [];
  for await (const row of search(filterOnly)) rows.push(row);
  // Harper's record objects expose properties through getters; compare reads them by name.
  rows.sort((a, b) => compare(a as Record<string, unknown>, b as Record<string, unknown>, sort));
  const start = offset ?? 0;
  yield* rows.slice(start, limit === undefined ? undefined : start + limit);
}
