/**
 * Demo devices for `npm start`, so the dashboard is alive the moment a newcomer opens it: a
 * gateway publishing four drifting sensors (demo-1..demo-4, one of which runs hot now and then),
 * two LED signs that greet until an operator sets them, and an alert rule on the hot sensor, so
 * the Alerts panel shows an alert firing and resolving within the first minute. Each device runs
 * as a device user of its own (created once, passwords saved owner-only beside the data), as
 * separate processes speaking MQTT like real devices. `npm start -- --no-demo` (or DEMO=0)
 * leaves all of it out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPONENT_DIR, basicAuth, type AdminCredentials } from './harper-process.js';
import { OperationsClient } from './operations-client.js';

export const DEMO_SENSORS = ['demo-1', 'demo-2', 'demo-3', 'demo-4'];
/** The demo signs and what each shows until an operator sets it. */
export const DEMO_SIGNS: Record<string, string> = {
  '2FE598': 'Hello from Harper!',
  '7C41B0': 'Live over MQTT, WebSocket, SSE',
};
const FLEET_USER = 'demo-fleet';
/** The sensor that runs hot for 10 s of every 30 s, and the rule that watches it. */
const HOT_SENSOR = 'demo-4';
const DEMO_RULE = { id: 'demo-too-hot', sensorId: HOT_SENSOR, field: 'temperature', above: 28, hysteresis: 2 };

type DemoCredentials = Record<string, string>;

/** Creates the demo device users if needed; returns their passwords. */
async function ensureUsers(client: OperationsClient, file: string): Promise<DemoCredentials> {
  const saved: DemoCredentials = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DemoCredentials) : {};
  const existing = new Set((await client.listUsers()).map((user) => user.username));
  for (const username of [FLEET_USER, ...Object.keys(DEMO_SIGNS)]) {
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

/** Creates the demo rule unless it exists (an operator may have changed it; a deleted one comes back). */
async function ensureRule(httpUrl: string, admin: AdminCredentials): Promise<void> {
  const { id, ...rule } = DEMO_RULE;
  const headers = { authorization: basicAuth(admin), 'content-type': 'application/json' };
  const existing = await fetch(`${httpUrl}/rules/${id}`, { headers });
  await existing.arrayBuffer();
  if (existing.status === 200) return;
  const created = await fetch(`${httpUrl}/rules/${id}`, { method: 'PUT', headers, body: JSON.stringify(rule) });
  if (!created.ok) throw new Error(`demo rule ${id}: ${created.status} ${await created.text()}`);
}

export async function startDemo(options: {
  dataDir: string;
  admin: AdminCredentials;
  operationsUrl: string;
  mqttUrl: string;
  httpUrl: string;
}): Promise<Demo> {
  const client = new OperationsClient(options.operationsUrl, options.admin);
  const passwords = await ensureUsers(client, join(options.dataDir, 'demo-devices.json'));
  await ensureRule(options.httpUrl, options.admin);
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
  launch('sensor-fleet.js', FLEET_USER, ['--sensors', DEMO_SENSORS.join(','), '--heat', HOT_SENSOR]);
  for (const [sign, greeting] of Object.entries(DEMO_SIGNS)) launch('sign-device.js', sign, ['--message', greeting]);
  return {
    describe: () =>
      `  Demo devices: sensors ${DEMO_SENSORS.join(', ')} (user ${FLEET_USER}; ${HOT_SENSOR} runs hot now and then, rule ${DEMO_RULE.id}),\n` +
      `    LED signs ${Object.keys(DEMO_SIGNS).join(', ')} (users named like them), simulated over MQTT;\n` +
      `    passwords in ${join(options.dataDir, 'demo-devices.json')}; --no-demo leaves them out.`,
    stop: () => children.forEach((child) => child.kill('SIGTERM')),
  };
}
