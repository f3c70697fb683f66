/**
 * Smaller holes from the security review: a device taking over another
 * client's durable MQTT session by reusing its client id, and spreadsheet formulas reaching the
 * CSV export through device-chosen text.
 */
import mqtt, { type IConnackPacket } from 'mqtt';
import { describe, expect, inject, it } from 'vitest';
import { rest } from './harness/rest.js';
import { createUser } from './harness/users.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

const harper = inject('harper');
const run = Date.now().toString(36);

/** CONNECT with exactly this client id: the CONNACK, or the refusal's reason code. */
function connectAs(
  user: AdminCredentials,
  clientId: string,
  options: { protocolVersion?: 4 | 5; clean?: boolean } = {},
) {
  return new Promise<{ connack?: IConnackPacket; refused?: number; client: mqtt.MqttClient }>((resolve) => {
    const client = mqtt.connect(harper.mqttUrl, {
      username: user.username,
      password: user.password,
      clientId,
      protocolVersion: options.protocolVersion ?? 5,
      clean: options.clean ?? true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    client.once('connect', (connack) => resolve({ connack, client }));
    client.once('error', (error) => {
      client.end(true);
      resolve({ refused: (error as { code?: number }).code, client });
    });
  });
}

describe('MQTT client ids of device users are bound to their name', () => {
  it('a device may use its name or <name>.<suffix>, nothing else (CONNACK 135 / 5)', async () => {
    const a = await createUser(harper, 'device', `${run}-a`);
    for (const id of [a.username, `${a.username}.uplink`]) {
      const ok = await connectAs(a, id);
      expect(ok.connack?.reasonCode ?? 0, id).toBe(0);
      await ok.client.endAsync();
    }
    for (const id of [`${run}-b`, `${a.username}-2`, `x${a.username}`, 'dashboard-1']) {
      expect((await connectAs(a, id)).refused, id).toBe(135);
      expect((await connectAs(a, id, { protocolVersion: 4 })).refused, id).toBe(5);
    }
  });

  it('another device cannot take over (or wipe) a durable session by reusing its client id', async () => {
    const owner = await createUser(harper, 'device', `${run}-owner`);
    const intruder = await createUser(harper, 'device', `${run}-intruder`);
    const first = await connectAs(owner, owner.username, { clean: false });
    expect(first.connack?.reasonCode ?? 0).toBe(0);
    const granted = await first.client.subscribeAsync(`sensors/${owner.username}`, { qos: 1 });
    expect(granted[0].qos).toBeLessThan(0x80);
    await first.client.endAsync();

    // clean=false would resume it, clean=true would delete it: both refused.
    expect((await connectAs(intruder, owner.username, { clean: false })).refused).toBe(135);
    expect((await connectAs(intruder, owner.username, { clean: true })).refused).toBe(135);

    const back = await connectAs(owner, owner.username, { clean: false });
    expect(back.connack?.sessionPresent).toBe(true);
    await back.client.endAsync();
  });

  it("viewers and operators may use any client id but a device's; the admin any", async () => {
    const device = await createUser(harper, 'device', `${run}-owned`);
    for (const role of ['viewer', 'operator'] as const) {
      const user = await createUser(harper, role, `${run}-${role}`);
      const free = await connectAs(user, `dashboard-${run}`);
      expect(free.connack?.reasonCode ?? 0).toBe(0);
      await free.client.endAsync();
      expect((await connectAs(user, device.username)).refused).toBe(135);
      expect((await connectAs(user, `${device.username}.uplink`, { protocolVersion: 4 })).refused).toBe(5);
    }
    const admin = await connectAs(harper.admin, device.username);
    expect(admin.connack?.reasonCode ?? 0).toBe(0);
    await admin.client.endAsync();
  });
});

describe('CSV export', () => {
  it('neutralises text that a spreadsheet would run as a formula (=, +, -, @), in CSV only', async () => {
    const cases = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2+3', '@SUM(A1)', 'plain lab'];
    const ids = cases.map((_, i) => `${run}-csv-${i}`);
    for (const [i, location] of cases.entries()) {
      expect((await rest(harper, 'PUT', `/sensors/${ids[i]}`, { json: { location, temperature: -4.5 } })).status).toBe(
        204,
      );
    }
    // One record (Harper's single-record serializer) and a query (its streaming one).
    const one = await rest(harper, 'GET', `/sensors/${ids[0]}`, { headers: { accept: 'text/csv' } });
    expect(one.status).toBe(200);
    expect(one.text).toContain(`"'=HYPERLINK(""http://evil.example"",""x"")"`);
    for (const [i, location] of cases.entries()) {
      const csv = await rest(harper, 'GET', `/readings/?sensorId=${ids[i]}&select(sensorId,location,temperature)`, {
        headers: { accept: 'text/csv' },
      });
      expect(csv.status).toBe(200);
      const cell = csv.text.split('\n')[1].split(',')[1];
      const expected = i < 4 ? `"'${location.replace(/"/g, '""')}"` : `"${location}"`;
      expect(cell === expected || csv.text.split('\n')[1].includes(expected), csv.text).toBe(true);
      expect(csv.text.split('\n')[1]).toContain('-4.5'); // numbers untouched
      // JSON carries the value exactly as stored.
      const json = await rest<{ location: string }[]>(harper, 'GET', `/readings/?sensorId=${ids[i]}`);
      expect(json.body[0].location).toBe(location);
    }
  });
});
