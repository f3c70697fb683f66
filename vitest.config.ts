import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Two tiers. `unit`: pure modules, no Harper, seconds (`npm run test:unit`). `integration`: one
 * real Harper for the run and real clients. `npm test` runs both.
 */
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 5_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/unit/**'],
          // One real Harper for the run (isolated HOME, ROOTPATH and free loopback ports).
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 90_000,
          // Test files share that Harper but use their own ids, so they may run side by side.
        },
      },
    ],
  },
});
