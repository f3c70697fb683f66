/**
 * Demo devices for `npm start`, so the dashboard is alive the moment a newcomer opens it: a
 * gateway publishing four drifting sensors (demo-1..demo-4) and the LED sign 2FE598. Each runs as
 * a device user of its own (created once, passwords saved owner-only beside the data), as separate
 * processes speaking MQTT like real devices. `npm start -- --no-demo` (or DEMO=0) leaves them out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPONENT_DIR, type AdminCredentials } from './harper-process.js';
import { OperationsClient } from './operations-client.js';

export const DEMO_SENSORS = ['demo-1', 'demo-2', 'demo-3', 'demo-4'];
export const DEMO_SIGN = '2FE598';
const FLEET_USER = 'demo-fleet';

type DemoCredentials = Record<string, string>;

/** Creates the demo device users if needed; returns their passwords. */
async function ensureUsers(client: OperationsClient, file: string): Promise<DemoCredentials> {
  const saved: DemoCredentials = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DemoCredentials) : {};
  const existing = new Set((await client.listUsers()).map((user) => user.username));
  for (const username of [FLEET_USER, DEMO_SIGN]) {
    if (existing.has(username) && saved[username]) continue;
    const password = randomBytes(18).toString('base64url');
    if (existing.has(username)) await client.setPassword(username, password);
    else await client.addUser(username, 'device', password);
    saved[username] = password;
  }
  await client.setGrants({ id: FLEET_USER, sensors: DEMO_SENSORS, signs: [] });
  writeFileSync(file, JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
  return saved;
}

export interface Demo {
  describe(): string;
  stop(): void;
}

export async function startDemo(options: { dataDir: string; admin: AdminCredentials; operationsUrl: string; mqttUrl: string }): Promise<Demo> {
  const client = new OperationsClient(options.operationsUrl, options.admin);
  const passwords = await ensureUsers(client, join(options.dataDir, 'demo-devices.json'));
  const children: ChildProcess[] = [];
  const launch = (script: string, username: string, args: string[]) => {
    const child = spawn(process.execPath, [join(COMPONENT_DIR, 'dist', 'devices', script), '--quiet', ...args], {
      // Only what a device needs: not the launcher's environment, which may hold the admin's
      // credentials (HDB_ADMIN_PASSWORD, CLI_TARGET_PASSWORD) or anything else of the operator's.
      env: { DEVICE_URL: options.mqttUrl, DEVICE_USERNAME: username, DEVICE_PASSWORD: passwords[username] },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
  };
  launch('sensor-fleet.js', FLEET_USER, ['--sensors', DEMO_SENSORS.join(',')]);
  launch('sign-device.js', DEMO_SIGN, []);
  return {
    describe: () =>
      `  Demo devices: sensors ${DEMO_SENSORS.join(', ')} (user ${FLEET_USER}) and LED sign ${DEMO_SIGN} (user ${DEMO_SIGN}),\n` +
      `    simulated over MQTT; passwords in ${join(options.dataDir, 'demo-devices.json')}; --no-demo leaves them out.`,
    stop: () => children.forEach((child) => child.kill('SIGTERM')),
  };
}
