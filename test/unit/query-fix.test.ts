/** The sort workaround for `readings` queries (lib/harper/sort-condition-workaround.ts). */
import { describe, expect, it } from 'vitest';
import {
  MAX_SORTED_ROWS,
  needsSortWorkaround,
  sortedSearch,
  type Query,
} from '../../lib/harper/sort-condition-workaround.js';
import { refusalOfAsync } from './refusal.js';

interface Row {
  sensorId: string;
  time?: number;
  n: number;
}

/** A stand-in for Harper's filtered search: records the query it was given. */
function searchOver(rows: Row[]) {
  const seen: Query[] = [];
  async function* search(query: Query): AsyncIterable<Row> {
    seen.push(query);
    for (const row of rows.slice(0, query.limit)) yield row;
  }
  return { seen, search };
}

async function collect(rows: AsyncIterable<Row>): Promise<number[]> {
  const out: number[] = [];
  for await (const row of rows) out.push(row.n);
  return out;
}

const byTime: Query = {
  conditions: [
    { attribute: 'sensorId', comparator: 'equals', value: 'a' },
    { attribute: 'time', comparator: 'greater_than_equal', value: 1 },
  ],
  sort: { attribute: 'time' },
};

describe('which queries need it', () => {
  it('is a sort on an attribute that also has a condition, nested ones included', () => {
    expect(needsSortWorkaround(byTime)).toBe(true);
    expect(
      needsSortWorkaround({ conditions: [{ conditions: [{ attribute: 'time' }] }], sort: { attribute: 'time' } }),
    ).toBe(true);
    expect(needsSortWorkaround({ conditions: byTime.conditions, sort: { attribute: 'n' } })).toBe(false);
    expect(needsSortWorkaround({ conditions: byTime.conditions })).toBe(false);
    expect(needsSortWorkaround(undefined)).toBe(false);
  });
});

describe('the sorted search', () => {
  const rows: Row[] = [
    { sensorId: 'a', time: 30, n: 3 },
    { sensorId: 'a', time: 10, n: 1 },
    { sensorId: 'a', n: 0 },
    { sensorId: 'a', time: 20, n: 2 },
    { sensorId: 'a', time: 20, n: 4 },
  ];

  it('filters without sort, offset or limit, then sorts and pages here', async () => {
    const { seen, search } = searchOver(rows);
    expect(await collect(sortedSearch({ ...byTime, offset: 1, limit: 3 }, search))).toEqual([1, 2, 4]);
    expect(seen).toEqual([{ conditions: byTime.conditions, limit: MAX_SORTED_ROWS + 1 }]);
  });

  it('sorts descending, rows without the attribute first ascending and last descending, ties by the next level', async () => {
    const { search } = searchOver(rows);
    expect(
      await collect(
        sortedSearch(
          { ...byTime, sort: { attribute: 'time', descending: true, next: { attribute: 'n', descending: true } } },
          search,
        ),
      ),
    ).toEqual([3, 4, 2, 1, 0]);
    expect(await collect(sortedSearch(byTime, searchOver(rows).search))).toEqual([0, 1, 2, 4, 3]);
  });

  it('is a promise of the rows too, and searches once', async () => {
    const { seen, search } = searchOver(rows);
    const result = sortedSearch({ ...byTime, limit: 2 }, search);
    expect(await collect(await result)).toEqual([0, 1]);
    expect(seen).toHaveLength(1);
  });

  it('refuses a query selecting more than it may sort, before any row is sent', async () => {
    const many = Array.from({ length: MAX_SORTED_ROWS + 5 }, (_, n) => ({ sensorId: 'a', time: n, n }));
    expect(await refusalOfAsync(() => Promise.resolve(sortedSearch(byTime, searchOver(many).search)))).toMatchObject({
      error: 'query_too_broad',
      field: 'time',
      statusCode: 400,
    });
  });
});
