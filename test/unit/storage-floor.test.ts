/** The storage floor's arithmetic and report (bench/floor.ts): medians per way, and the ceiling they set. */
import { describe, expect, it } from 'vitest';
import { componentTables, floorMedians, floorReport, storageCeiling, type FloorRound } from '../../bench/floor.js';
import type { Summary } from '../../bench/report.js';

const cost = (processUs: number, threadUs: number) => ({ processUs, threadUs });

/** A median row of the plain table (1 thread) in `scenario` with `cpuUsPerMsg`. */
function plainRow(scenario: string, cpuUsPerMsg: number): Summary {
  return {
    system: 'plain',
    threads: 1,
    scenario,
    sent: 1,
    expected: 1,
    received: 1,
    lost: 0,
    duplicates: 0,
    throughput: 1,
    p50: 1,
    p95: 1,
    p99: 1,
    max: 1,
    cpuUsPerMsg,
    rounds: 3,
    spread: [1, 1],
  };
}

describe('storage floor', () => {
  it('ceiling: the plain table with its storage replaced by the data model’s', () => {
    // 400 µs a message, of which 120 storage: the same work with 200 of storage is 480.
    expect(storageCeiling(400, 120, 200)).toBeCloseTo(400 / 480, 10);
    expect(storageCeiling(400, 120, 120)).toBe(1);
    // Cheaper storage than the plain table's would allow more than the plain table's rate.
    expect(storageCeiling(400, 120, 80)).toBeGreaterThan(1);
  });

  it('takes each way’s median over the rounds, process and thread apart, and skips missing ways', () => {
    const rounds: FloorRound[] = [
      { plain: cost(100, 80), 'model-batched': cost(190, 150) },
      { plain: cost(130, 70), 'model-batched': cost(170, 160) },
      { plain: cost(120, 90) },
    ];
    const medians = floorMedians(rounds);
    expect(medians.plain).toEqual(cost(120, 80));
    expect(medians['model-batched']).toEqual(cost(180, 155));
    expect(medians['model-own']).toBeUndefined();
  });

  it('reports the ceiling from the cheapest way of storing the data model, per persisted scenario the plain table ran', () => {
    const rounds: FloorRound[] = [
      {
        plain: cost(120, 90),
        'model-own': cost(250, 200),
        'model-batched': cost(200, 150),
        'model-one-txn': cost(180, 160),
      },
    ];
    const lines = floorReport([plainRow('tput-mqtt', 400), plainRow('lat-mqtt', 900)], rounds);
    const ceilings = lines.filter((line) => line.includes('[ceiling]'));
    // Only tput-mqtt: the others have no plain row, and a fixed-rate row is not a throughput target.
    expect(ceilings).toHaveLength(1);
    expect(ceilings[0]).toContain('tput-mqtt');
    expect(ceilings[0]).toContain(`${(400 / (400 - 120 + 180)).toFixed(2)}x`);
    expect(lines.some((line) => line.includes('one transaction') && line.includes('180'))).toBe(true);
  });

  it('reports nothing without the plain table’s way or any way of the data model', () => {
    expect(floorReport([plainRow('tput-mqtt', 400)], [{ plain: cost(120, 90) }])).toEqual([]);
    expect(floorReport([plainRow('tput-mqtt', 400)], [{ 'model-batched': cost(200, 150) }])).toEqual([]);
    expect(floorReport([plainRow('tput-mqtt', 400)], [])).toEqual([]);
  });

  it('stores into this component’s own sensors and readings tables, unexported, with their indexes and expiry', () => {
    const tables = componentTables();
    expect(tables).toMatch(/^type sensors @table \{/m);
    expect(tables).toMatch(/^type readings @table\(expiration: 604800\) \{/m);
    expect(tables).toMatch(/location: String @indexed/);
    expect(tables).toMatch(/sensorId: String @indexed/);
    expect(tables).toMatch(/time: Float @indexed/);
    expect(tables).not.toContain('@export');
    expect(tables).not.toContain('type topics');
    // A schema without one of them is refused, not measured as something else.
    expect(() => componentTables('type sensors @table @export {\n  id: ID @primaryKey\n}\n')).toThrow(/readings/);
  });
});
