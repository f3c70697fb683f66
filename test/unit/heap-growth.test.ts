/**
 * lib/harper/heap-growth.ts: the flag it sets, what HEAP_GROWING_PERCENT may change, and that the
 * flag is one this Node's V8 knows (for an unknown flag V8 only prints an error and goes on, which
 * would silently bring V8's own factor back). Its effect on the latency tail is measured by the
 * benchmark, never here.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GROWING_PERCENT, heapGrowingFlag, setHeapGrowth } from '../../lib/harper/heap-growth.js';

describe('heap growth', () => {
  it('lets the old generation grow to twice its live objects by default', () => {
    expect(DEFAULT_GROWING_PERCENT).toBe(100);
    expect(heapGrowingFlag(undefined)).toBe('--heap-growing-percent=100');
    expect(heapGrowingFlag('')).toBe('--heap-growing-percent=100');
    const set: string[] = [];
    setHeapGrowth((flags) => set.push(flags), {});
    setHeapGrowth((flags) => set.push(flags), { HEAP_GROWING_PERCENT: '150' });
    expect(set).toEqual(['--heap-growing-percent=100', '--heap-growing-percent=150']);
  });

  it('takes another whole percentage from 0 (V8 chooses) to 400', () => {
    expect(heapGrowingFlag('0')).toBe('--heap-growing-percent=0');
    expect(heapGrowingFlag('50')).toBe('--heap-growing-percent=50');
    expect(heapGrowingFlag('400')).toBe('--heap-growing-percent=400');
  });

  it('keeps the default for a value out of range or not a whole number, and says so', () => {
    for (const bad of ['-1', '401', '1.5', 'lots', '1e3']) {
      const warnings: string[] = [];
      expect(heapGrowingFlag(bad, (message) => warnings.push(message))).toBe('--heap-growing-percent=100');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`"${bad}"`);
    }
  });

  it('names a flag that this Node accepts on its command line', () => {
    const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    expect(options).toMatch(/--heap-growing-percent \(/);
    const printed = execFileSync(process.execPath, [heapGrowingFlag('100'), '-p', '1'], { encoding: 'utf8' });
    expect(printed.trim()).toBe('1');
  });
});
