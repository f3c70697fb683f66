/**
 * Starts one real Harper for the whole run, with this component, from node_modules: its own
 * temporary HOME and ROOTPATH, free loopback ports, `run` mode; removed afterwards.
 * Tests that must restart Harper start their own with `startTestHarper`.
 */
import type { TestProject } from 'vitest/node';
import { startTestHarper, type HarperEndpoints } from './harper.js';

declare module 'vitest' {
  export interface ProvidedContext {
    harper: HarperEndpoints;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const harper = await startTestHarper();
  project.provide('harper', harper.endpoints);
  return () => harper.dispose();
}
