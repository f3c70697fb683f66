/**
 * The device simulators, run as the CLIs they are against the test Harper: the sensor fleet
 * publishes drifting readings as a gateway device; the sign device shows its sign's desired state,
 * follows changes made over REST, reports what it shows, and catches up after being offline.
 */
import { describe, expect, inject, it } from 'vitest';
import { simulator as simulatorOf } from './harness/devices.js';
import { rest } from './harness/rest.js';
import { createUser } from './harness/users.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

const harper = inject('harper');
const run = Date.now().toString(36);

const simulator = (script: string, args: string[], device: AdminCredentials) =>
  simulatorOf(harper, script, args, device);

describe('sensor fleet', () => {
  it('publishes the requested readings for every sensor it is granted, with plausible values', async () => {
    const ids = [`${run}-a`, `${run}-b`];
    const gateway = await createUser(harper, 'device', `${run}-gw`, { sensors: ids });
    const fleet = simulator(
      'sensor-fleet.js',
      ['--sensors', ids.join(','), '--interval', '0.05', '--count', '3'],
      gateway,
    );
    expect(await fleet.exited, fleet.output()).toBe(0);
    expect(fleet.output()).toContain('sent 6 readings');
    for (const id of ids) {
      const readings = await rest<{ temperature: number; humidity: number; battery: number; deviceTime: number }[]>(
        harper,
        'GET',
        `/readings/?sensorId=${id}&sort(time)`,
      );
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
  it('greets on a new sign, shows changes made over REST and reports them; offline while its sign changes, it catches up on its return', async () => {
    const id = `S${run}`;
    const device = await createUser(harper, 'device', id);
    let sign = simulator('sign-device.js', ['--message', 'Typed on the sign'], device);
    try {
      await sign.printed(/listening on signs\//);
      // A new sign: the device shows what it starts with and reports it.
      await sign.printed(/power on, .*message "Typed on the sign"/);
      await sign.printed(/reported message "Typed on the sign"/);
      expect((await rest(harper, 'GET', `/signs/${id}`)).body).toMatchObject({
        reported: { power: 'on', message: 'Typed on the sign' },
        reportedBy: id,
        pending: [],
      });
      expect(
        (await rest(harper, 'PATCH', `/signs/${id}`, { json: { message: 'Set from the dashboard', brightness: 11 } }))
          .status,
      ).toBe(204);
      await sign.printed(/brightness 11 .*message "Set from the dashboard" \(by admin\)/);
      await sign.printed(/reported message "Set from the dashboard"/);
      const shown = (
        await rest<{ pending: string[]; shownAt: number; updatedAt: number }>(harper, 'GET', `/signs/${id}`)
      ).body;
      expect(shown).toMatchObject({
        message: 'Set from the dashboard',
        reported: { message: 'Set from the dashboard', brightness: 11 },
        pending: [],
      });
      expect(shown.shownAt).toBeGreaterThanOrEqual(shown.updatedAt);
    } finally {
      sign.child.kill('SIGTERM');
      expect(await sign.exited).toBe(0);
    }
    // Offline: the change waits in the twin.
    expect((await rest(harper, 'PATCH', `/signs/${id}`, { json: { message: 'While you were away' } })).status).toBe(
      204,
    );
    expect((await rest(harper, 'GET', `/signs/${id}`)).body).toMatchObject({ pending: ['message'], shownAt: null });
    sign = simulator('sign-device.js', ['--message', 'Typed on the sign'], device);
    try {
      await sign.printed(/reported message "While you were away"/);
      expect((await rest(harper, 'GET', `/signs/${id}`)).body).toMatchObject({
        reported: { message: 'While you were away' },
        pending: [],
      });
    } finally {
      sign.child.kill('SIGTERM');
      expect(await sign.exited).toBe(0);
    }
  });
});
