/**
 * The device simulators, run as the CLIs they are against the test Harper: the sensor fleet
 * publishes drifting readings as a gateway device; the sign device shows its sign, follows changes
 * made over REST, and reports its own state on the per-field topics.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { COMPONENT_DIR } from '../scripts/harper-process.js';
import { rest } from './harness/rest.js';
import { createUser } from './harness/users.js';
import type { AdminCredentials } from '../scripts/harper-process.js';

const harper = inject('harper');
const run = Date.now().toString(36);

/** Starts a simulator; `output()` is what it printed so far; `exited` its exit code. */
function simulator(script: string, args: string[], device: AdminCredentials) {
  const child = spawn(process.execPath, [join(COMPONENT_DIR, 'dist', 'devices', script), ...args], {
    env: { ...process.env, DEVICE_URL: harper.mqttUrl, DEVICE_USERNAME: device.username, DEVICE_PASSWORD: device.password },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const printed = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script} printed no ${pattern}:\n${output}`)), timeoutMs);
      const check = () => pattern.test(output) && (clearTimeout(timer), resolve());
      child.stdout.on('data', check);
      check();
    });
  return { child, exited, printed, output: () => output };
}

describe('sensor fleet', () => {
  it('publishes the requested readings for every sensor it is granted, with plausible values', async () => {
    const ids = [`${run}-a`, `${run}-b`];
    const gateway = await createUser(harper, 'device', `${run}-gw`, { sensors: ids });
    const fleet = simulator('sensor-fleet.js', ['--sensors', ids.join(','), '--interval', '0.05', '--count', '3'], gateway);
    expect(await fleet.exited, fleet.output()).toBe(0);
    expect(fleet.output()).toContain('sent 6 readings');
    for (const id of ids) {
      const readings = await rest<{ temperature: number; humidity: number; battery: number; deviceTime: number }[]>(harper, 'GET', `/readings/?sensorId=${id}&sort(time)`);
      expect(readings.body).toHaveLength(3);
      for (const reading of readings.body) {
        expect(reading.temperature).toBeGreaterThan(0);
        expect(reading.temperature).toBeLessThan(40);
        expect(reading.humidity).toBeGreaterThanOrEqual(0);
        expect(reading.battery).toBeLessThanOrEqual(100);
        expect(typeof reading.deviceTime).toBe('number');
      }
    }
  });

  it('reports what the server refuses (a sensor it does not own) and says how to use it', async () => {
    const device = await createUser(harper, 'device', `${run}-solo`);
    const fleet = simulator('sensor-fleet.js', ['--sensors', `${run}-not-mine`, '--count', '1'], device);
    expect(await fleet.exited).toBe(0);
    expect(fleet.output()).toMatch(/sensors\/.*-not-mine: refused/);
    expect((await rest(harper, 'GET', `/sensors/${run}-not-mine`)).status).toBe(404);
    const help = simulator('sensor-fleet.js', ['--help'], device);
    expect(await help.exited).toBe(0);
    expect(help.output()).toContain('--sensors');
  });
});

describe('sign device', () => {
  it('reports itself on when its sign is new, shows changes made over REST, and reports a local message', async () => {
    const id = `S${run}`;
    const device = await createUser(harper, 'device', id);
    const sign = simulator('sign-device.js', ['--message', 'Typed on the sign'], device);
    try {
      await sign.printed(/listening on signs\//);
      // A new sign: the device reports it is on and what it shows, and then shows that state.
      await sign.printed(/power on, .*message "Typed on the sign"/);
      expect((await rest(harper, 'GET', `/signs/${id}`)).body).toMatchObject({ power: 'on', message: 'Typed on the sign', updatedBy: id });
      expect((await rest(harper, 'PATCH', `/signs/${id}`, { json: { message: 'Set from the dashboard', brightness: 11 } })).status).toBe(204);
      await sign.printed(/brightness 11 .*message "Set from the dashboard" \(by admin\)/);
    } finally {
      sign.child.kill('SIGTERM');
      expect(await sign.exited).toBe(0);
    }
  });
});
