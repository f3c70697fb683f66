/** The Harper settings every instance we start gets (launcher/harper-process.ts). */
import { describe, expect, it } from 'vitest';
import { HARPER_DEFAULTS, HARPER_SETTINGS, mergedSetConfig } from '../../launcher/harper-process.js';

const merged = (given?: string) =>
  JSON.parse(mergedSetConfig(HARPER_SETTINGS, HARPER_DEFAULTS, given)) as Record<string, Record<string, unknown>>;

describe('Harper settings', () => {
  it('starts with our settings and our defaults when the user gives none', () => {
    const config = merged(undefined);
    expect(config.authentication.authorizeLocal).toBe(false);
    expect(config.storage.prefetchWrites).toBe(false);
    expect(config.threads.maxHeapMemory).toBe(4096);
  });

  it("lets the user's HARPER_SET_CONFIG change a default and add settings, never undo one of ours", () => {
    const config = merged(
      JSON.stringify({
        threads: { maxHeapMemory: 1024, count: 3 },
        authentication: { authorizeLocal: true, cacheTTL: 1000 },
        logging: { level: 'debug' },
      }),
    );
    expect(config.threads).toEqual({ maxHeapMemory: 1024, count: 3 });
    expect(config.authentication).toEqual({ authorizeLocal: false, cacheTTL: 1000 });
    expect(config.logging).toEqual({ level: 'debug' });
    expect(config.mqtt.requireAuthentication).toBe(true);
  });

  it('refuses a HARPER_SET_CONFIG that is not JSON', () => {
    expect(() => merged('{threads:')).toThrow('HARPER_SET_CONFIG is not valid JSON');
  });
});
