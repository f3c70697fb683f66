import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One real Harper for the run (isolated HOME, ROOTPATH and free loopback ports).
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 90_000,
    // Test files share that Harper but use their own ids, so they may run side by side.
    reporters: ['default'],
  },
});
