/** A disposable Harper for tests: temporary folder, free ports, generated admin password. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startHarper, type AdminCredentials, type HarperInstance } from '../../launcher/harper-process.js';

export interface HarperEndpoints {
  httpUrl: string;
  wsUrl: string;
  mqttUrl: string;
  operationsUrl: string;
  admin: AdminCredentials;
  /** Harper's log file, for asserting what the server logged. */
  logFile: string;
}

export interface TestHarper {
  endpoints: HarperEndpoints;
  instance: HarperInstance;
  dataDir: string;
  /** Stops Harper and removes its folder. */
  dispose(): Promise<void>;
}

export async function startTestHarper(
  options: { dataDir?: string; admin?: AdminCredentials; env?: Record<string, string> } = {},
): Promise<TestHarper> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'backbone-test-'));
  const ports = { http: await freePort(), mqtt: await freePort(), operations: await freePort() };
  const admin = options.admin ?? { username: 'admin', password: randomBytes(16).toString('hex') };
  const instance = await startHarper({ dataDir, ports, admin, env: options.env });
  return {
    instance,
    dataDir,
    endpoints: {
      httpUrl: `http://127.0.0.1:${ports.http}`,
      wsUrl: `ws://127.0.0.1:${ports.http}`,
      mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
      operationsUrl: `http://127.0.0.1:${ports.operations}`,
      admin,
      logFile: join(instance.rootPath, 'log', 'hdb.log'),
    },
    async dispose() {
      await instance.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
