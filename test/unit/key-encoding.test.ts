/**
 * lib/harper/key-encoding.ts: raises V8's polymorphism limit, with a flag this Node's V8 knows
 * (for a flag it does not know V8 only prints an error and goes on, which would silently bring the
 * slow key encoding back).
 * Its effect on speed is measured by the benchmark, never here.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { keepKeyEncodingPolymorphic, POLYMORPHIC_KINDS } from '../../lib/harper/key-encoding.js';

describe('key encoding', () => {
  it('sets V8 polymorphic inline caches to eight kinds, above the default four', () => {
    const set: string[] = [];
    keepKeyEncodingPolymorphic((flags) => set.push(flags));
    expect(set).toEqual(['--max-valid-polymorphic-map-count=8']);
    expect(POLYMORPHIC_KINDS).toBeGreaterThan(4);
  });

  it('names a flag that this Node accepts on its command line', () => {
    const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    expect(options).toMatch(/--max-valid-polymorphic-map-count \(/);
    const printed = execFileSync(
      process.execPath,
      [`--max-valid-polymorphic-map-count=${POLYMORPHIC_KINDS}`, '-p', '1'],
      {
        encoding: 'utf8',
      },
    );
    expect(printed.trim()).toBe('1');
  });
});
