/**
 * Smaller holes from the security review (issue 13, item 8): a device taking over another
 * client's durable MQTT session by reusing its client id.
 */
import mqtt, { type IConnackPacket } from 'mqtt';
import { describe, expect, inject, it } from 'vitest';
import { createUser } from './harness/users.js';
import type { AdminCredentials } from '../scripts/harper-process.js';

const harper = inject('harper');
const run = Date.now().toString(36);

/** CONNECT with exactly this client id: the CONNACK, or the refusal's reason code. */
function connectAs(user: AdminCredentials, clientId: string, options: { protocolVersion?: 4 | 5; clean?: boolean } = {}) {
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

  it('viewers, operators and the admin keep free client ids (the dashboard uses random ones)', async () => {
    const viewer = await createUser(harper, 'viewer', `${run}-viewer`);
    const free = await connectAs(viewer, `dashboard-${run}`);
    expect(free.connack?.reasonCode ?? 0).toBe(0);
    await free.client.endAsync();
  });
});
