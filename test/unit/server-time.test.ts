/** Server time for writes and its fixed-width text (lib/write-path/server-time.ts). */
import { describe, expect, it } from 'vitest';
import { monotonicNow, timeKey } from '../../lib/write-path/server-time.js';

describe('server time', () => {
  it('increases strictly within a thread, by microsecond steps inside one millisecond', () => {
    const times = Array.from({ length: 2_000 }, () => monotonicNow());
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1]);
    expect(times.some((time) => !Number.isInteger(time))).toBe(true);
  });

  it('as a key, sorts as the time does: whole and fractional milliseconds, short and long numbers', () => {
    const times = [99, 1_000, 1_000.001, 1_000.01, 1_000.5, 1_001, 1e12, 1_796_203_000_123, 1_796_203_000_123.001];
    const keys = times.map(timeKey);
    expect(keys.every((key) => key.length === 17)).toBe(true);
    expect([...keys].sort()).toEqual(keys);
    // What a plain number would do: the whole millisecond after its own fractions.
    expect(['1000@s', '1000.5@s'].sort()).toEqual(['1000.5@s', '1000@s']);
    expect(timeKey(1_796_203_000_123.001)).toBe('1796203000123.001');
  });
});
