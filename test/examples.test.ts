/**
 * The device examples in examples/, run as a user would run them against the test Harper: the
 * Python device (Eclipse Paho from Debian's python3-paho-mqtt) publishes readings that land in the
 * history, and acts as an LED sign on the per-field topics: it shows what the dashboard asks,
 * reports it, and catches up after being offline.
 */
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { COMPONENT_DIR, type AdminCredentials } from '../launcher/harper-process.js';
import { deviceProcess } from './harness/devices.js';
import { rest } from './harness/rest.js';
import { createUser } from './harness/users.js';

const harper = inject('harper');
const run = Date.now().toString(36);
const mqttPort = new URL(harper.mqttUrl).port;

/** Runs examples/python-device/device.py with Debian's Python (where python3-paho-mqtt installs). */
function pythonDevice(device: AdminCredentials, args: string[]) {
  return deviceProcess(
    'device.py',
    '/usr/bin/python3',
    [join(COMPONENT_DIR, 'examples', 'python-device', 'device.py'), '--host', '127.0.0.1', '--port', mqttPort, ...args],
    { PATH: process.env.PATH ?? '', DEVICE_USERNAME: device.username, DEVICE_PASSWORD: device.password },
    15_000,
  );
}

interface Twin {
  message?: string;
  reported?: { message?: string; brightness?: number };
  pending: string[];
  shownAt: number | null;
  updatedAt: number;
}

describe('the Python device (examples/python-device)', () => {
  it('publishes readings into the history, shows and reports what its sign is asked, and catches up after being offline', async () => {
    const id = `py-${run}`;
    const device = await createUser(harper, 'device', id);
    expect(
      (
        await rest(harper, 'PUT', `/signs/${id}`, {
          json: { message: 'Hello Python', brightness: 6, power: 'on', color: '#00ff00' },
        })
      ).status,
    ).toBe(204);
    let python = pythonDevice(device, ['--readings', '3', '--interval', '0.2']);
    try {
      // The retained desired values arrive on subscribing; each is shown and reported.
      await python.printed(/reported message 'Hello Python'/);
      await python.printed(/sent 3 readings/);
      const readings = await rest<{ sensorId: string; temperature: number; deviceTime: number }[]>(
        harper,
        'GET',
        `/readings/?sensorId=${id}&sort(time)`,
      );
      expect(readings.body).toHaveLength(3);
      for (const reading of readings.body) {
        expect(reading.temperature).toBeGreaterThan(10);
        expect(typeof reading.deviceTime).toBe('number');
      }
      await expect
        .poll(async () => (await rest<Twin>(harper, 'GET', `/signs/${id}`)).body.pending, { timeout: 10_000 })
        .toEqual([]);
      expect((await rest<Twin>(harper, 'GET', `/signs/${id}`)).body).toMatchObject({
        reported: { message: 'Hello Python', brightness: 6 },
      });

      // A change while it runs: shown and reported.
      expect((await rest(harper, 'PATCH', `/signs/${id}`, { json: { message: 'From the dashboard' } })).status).toBe(
        204,
      );
      await python.printed(/reported message 'From the dashboard'/);
      await expect
        .poll(async () => (await rest<Twin>(harper, 'GET', `/signs/${id}`)).body.reported?.message, { timeout: 10_000 })
        .toBe('From the dashboard');
    } finally {
      await python.stop();
    }

    // Offline: the change waits; back, the device gets it from the retained value and reports it.
    expect((await rest(harper, 'PATCH', `/signs/${id}`, { json: { message: 'While away' } })).status).toBe(204);
    expect((await rest<Twin>(harper, 'GET', `/signs/${id}`)).body).toMatchObject({
      pending: ['message'],
      shownAt: null,
    });
    python = pythonDevice(device, ['--readings', '1']);
    try {
      await python.printed(/reported message 'While away'/);
      await expect
        .poll(async () => (await rest<Twin>(harper, 'GET', `/signs/${id}`)).body.pending, { timeout: 10_000 })
        .toEqual([]);
      const twin = (await rest<Twin>(harper, 'GET', `/signs/${id}`)).body;
      expect(twin).toMatchObject({ message: 'While away', reported: { message: 'While away' } });
      expect(twin.shownAt).toBeGreaterThanOrEqual(twin.updatedAt);
    } finally {
      await python.stop();
    }
  });

  it('says what is missing without credentials', async () => {
    const python = pythonDevice({ username: '', password: '' }, []);
    expect(await python.exited).toBe(1);
    expect(python.output()).toMatch(/DEVICE_USERNAME and DEVICE_PASSWORD/);
  });
});
