/**
 * Device presence: presence/<device> follows the connections of device users (MQTT, MQTT over
 * WebSocket, plain WebSocket): online at once on connect, offline at once on a clean disconnect,
 * on socket loss (a device process killed with SIGKILL) and within 1.5 keepalives when a device
 * falls silent (a frozen process); offline only when a device's last connection ends; readable
 * and subscribable on REST, SSE, WebSocket and MQTT, by whoever may read the device's data, written
 * by nobody but the server; the same on both nodes of a cluster, and a restarted node marks the
 * devices of its previous process offline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { AdminCredentials } from '../launcher/harper-process.js';
import type { PresenceRecord } from '../lib/resources/presence.js';
import { eventually, startTestCluster, type TestCluster } from './harness/cluster.js';
import type { HarperEndpoints } from './harness/harper.js';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { connectMqtt, mqttSubscriber } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { createUser, operations } from './harness/users.js';
import { wsSubscriber } from './harness/ws.js';
import type { Received } from './harness/inbox.js';

const harper = inject('harper');
const run = `pres${Date.now().toString(36)}`;
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

const presenceOf = async (node: HarperEndpoints, device: string) =>
  (await rest<PresenceRecord>(node, 'GET', `/presence/${device}`)).body;

/** A presence event for `device` in `state`, on any protocol's subscriber. */
const presenceEvent = (device: string, state: PresenceRecord['state']) => (item: Received) => {
  const value = item.value as Partial<PresenceRecord> | null;
  return value?.id === device && value.state === state;
};

/** A device as a process of its own (test/clients/mqtt-device.mjs), connected once this resolves. */
async function deviceProcess(
  node: HarperEndpoints,
  device: AdminCredentials,
  keepaliveSeconds: number,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(REPO, 'test', 'clients', 'mqtt-device.mjs')], {
    cwd: REPO,
    env: {
      ...process.env,
      DEVICE_URL: node.mqttUrl,
      DEVICE_USERNAME: device.username,
      DEVICE_PASSWORD: device.password,
      DEVICE_KEEPALIVE: String(keepaliveSeconds),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('connected')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`device process exited (${code}) before connecting`)));
  });
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = once(child, 'exit');
  child.kill('SIGKILL');
  await exit;
}

describe('device presence on one node', () => {
  let watcher: Awaited<ReturnType<typeof mqttSubscriber>>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    watcher = await mqttSubscriber(harper, 'presence/#', { name: 'mqtt presence/#' });
  });

  afterAll(async () => {
    await Promise.all(children.map(killed));
    await watcher.close();
  });

  it('an MQTT connect is online at once and a clean disconnect offline at once, on REST, SSE, WebSocket and MQTT', async () => {
    const name = `${run}-clean`;
    const device = await createUser(harper, 'device', name);
    const sse = sseSubscriber(harper, `/presence/${name}`);
    const ws = await wsSubscriber(harper, '/presence/');
    try {
      const before = Date.now();
      const client = await connectMqtt(harper, { credentials: device });
      const online = await watcher.inbox.waitFor(presenceEvent(name, 'online'), 10_000, `${name} online on MQTT`);
      expect(online.topic).toBe(`presence/${name}`);
      expect(online.value).toEqual({
        id: name,
        state: 'online',
        since: expect.any(Number),
        lastSeen: expect.any(Number),
        via: 'mqtt',
      });
      const record = await presenceOf(harper, name);
      expect(record).toEqual(online.value);
      expect(record.since).toBeGreaterThanOrEqual(before);
      expect(record.since).toBeLessThanOrEqual(Date.now());
      await sse.inbox.waitFor(presenceEvent(name, 'online'), 10_000, 'online on SSE');
      await ws.inbox.waitFor(presenceEvent(name, 'online'), 10_000, 'online on WebSocket');

      const leaving = Date.now();
      await client.endAsync();
      const offline = await watcher.inbox.waitFor(presenceEvent(name, 'offline'), 10_000, `${name} offline on MQTT`);
      const value = offline.value as PresenceRecord;
      expect(value.via).toBe('mqtt');
      expect(value.since).toBeGreaterThanOrEqual(leaving);
      expect(value.lastSeen).toBe(value.since); // a clean disconnect: heard from until it left
      await sse.inbox.waitFor(presenceEvent(name, 'offline'), 10_000, 'offline on SSE');
      await ws.inbox.waitFor(presenceEvent(name, 'offline'), 10_000, 'offline on WebSocket');
      expect(await presenceOf(harper, name)).toEqual(value);
      // Exactly one change each way, in order.
      const states = watcher.inbox
        .filter((item) => (item.value as PresenceRecord | null)?.id === name)
        .map((item) => (item.value as PresenceRecord).state);
      expect(states).toEqual(['online', 'offline']);
    } finally {
      await sse.close();
      await ws.close();
    }
  });

  it('a device process killed with SIGKILL is offline within 1.5 keepalives (its socket closes: at once)', async () => {
    const name = `${run}-kill`;
    const device = await createUser(harper, 'device', name);
    const keepalive = 10;
    const child = await deviceProcess(harper, device, keepalive);
    children.push(child);
    await watcher.inbox.waitFor(presenceEvent(name, 'online'), 10_000, `${name} online`);
    const killedAt = Date.now();
    await killed(child);
    const offline = (
      await watcher.inbox.waitFor(presenceEvent(name, 'offline'), keepalive * 1500 + 5_000, `${name} offline`)
    ).value as PresenceRecord;
    expect(offline.since - killedAt).toBeLessThan(keepalive * 1500);
  });

  it('a frozen device process (SIGSTOP: its socket stays open, it sends nothing) is offline within 1.5 keepalives; lastSeen is its last packet', async () => {
    const name = `${run}-frozen`;
    const device = await createUser(harper, 'device', name);
    const keepalive = 2;
    const child = await deviceProcess(harper, device, keepalive);
    children.push(child);
    await watcher.inbox.waitFor(presenceEvent(name, 'online'), 10_000, `${name} online`);
    const frozenAt = Date.now();
    child.kill('SIGSTOP');
    try {
      const offline = (await watcher.inbox.waitFor(presenceEvent(name, 'offline'), 30_000, `${name} offline`))
        .value as PresenceRecord;
      // Harper ends the connection 1.5 keepalives after the last packet, which came before the
      // freeze; the allowance is for the write of the record on a busy machine.
      expect(offline.since - frozenAt).toBeLessThanOrEqual(keepalive * 1500 + 500);
      expect(offline.lastSeen).toBeLessThanOrEqual(frozenAt);
      expect(offline.since - offline.lastSeen).toBeGreaterThanOrEqual(keepalive * 1500 - 50);
    } finally {
      child.kill('SIGCONT');
      await killed(child);
    }
  });

  it('a device connected twice (MQTT over WebSocket and a plain WebSocket) is offline only when its last connection ends', async () => {
    const name = `${run}-twice`;
    const device = await createUser(harper, 'device', name);
    const client = await connectMqtt(harper, { credentials: device, overWebSocket: true });
    const first = await watcher.inbox.waitFor(presenceEvent(name, 'online'), 10_000, `${name} online`);
    expect((first.value as PresenceRecord).via).toBe('mqtt-ws');
    const socket = await wsSubscriber(harper, `/sensors/${name}`, { credentials: device });
    await watcher.inbox.waitFor(
      (item) => presenceEvent(name, 'online')(item) && (item.value as PresenceRecord).via === 'ws',
      10_000,
      'via ws',
    );
    // The device stayed online: its `since` is the first connection's.
    expect((await presenceOf(harper, name)).since).toBe((first.value as PresenceRecord).since);

    await client.endAsync();
    // The MQTT connection's end is settled once presence says the remaining connection's way in.
    await eventually(
      () => presenceOf(harper, name),
      (record) => record.state === 'online' && record.via === 'ws',
      10_000,
      'presence after the first connection ended',
    );
    expect(watcher.inbox.filter(presenceEvent(name, 'offline'))).toEqual([]);
    await socket.close();
    const offline = (await watcher.inbox.waitFor(presenceEvent(name, 'offline'), 10_000, `${name} offline`))
      .value as PresenceRecord;
    expect(offline.via).toBe('ws');
  });

  it('is read by admin, operators and viewers and by a device for itself only; nobody writes it on any protocol', async () => {
    const name = `${run}-rights`;
    const device = await createUser(harper, 'device', name);
    const other = await createUser(harper, 'device', `${run}-other`);
    const viewer = await createUser(harper, 'viewer', `${run}-viewer`);
    const operator = await createUser(harper, 'operator', `${run}-operator`);
    const client = await connectMqtt(harper, { credentials: device });
    await watcher.inbox.waitFor(presenceEvent(name, 'online'), 10_000, `${name} online`);
    try {
      for (const auth of [harper.admin, viewer, operator, device]) {
        const response = await rest<PresenceRecord>(harper, 'GET', `/presence/${name}`, { auth });
        expect(response.status, auth.username).toBe(200);
        expect(response.body.state).toBe('online');
      }
      expect((await rest(harper, 'GET', `/presence/${name}`, { auth: other })).status).toBe(403);
      expect((await rest(harper, 'GET', `/presence/${name}`, { auth: null })).status).toBe(401);
      expect((await rest(harper, 'GET', '/presence/', { auth: other })).status).toBe(403);
      const listed = await rest<PresenceRecord[]>(harper, 'GET', '/presence/', { auth: viewer });
      expect(listed.body.map((record) => record.id)).toContain(name);

      const fake = { id: name, state: 'offline', since: 1, lastSeen: 1, via: 'mqtt' };
      // Not even the admin: the policy gives nobody the write right (403 before any door is tried).
      for (const [method, path] of [
        ['PUT', `/presence/${name}`],
        ['PATCH', `/presence/${name}`],
        ['POST', '/presence/'],
        ['DELETE', `/presence/${name}`],
      ] as const) {
        const response = await rest<{ error: string }>(harper, method, path, method === 'DELETE' ? {} : { json: fake });
        expect(response.status, method).toBe(403);
        expect(response.body.error, method).toBe('forbidden');
      }
      const admin = await connectMqtt(harper, { protocolVersion: 5 });
      try {
        await expect(
          admin.publishAsync(`presence/${name}`, JSON.stringify(fake), { qos: 1, retain: true }),
        ).rejects.toMatchObject({ code: 128 });
      } finally {
        await admin.endAsync();
      }
      // A device subscribing to another device's presence is refused (SUBACK 135).
      const spy = await connectMqtt(harper, { credentials: other });
      try {
        await expect(spy.subscribeAsync(`presence/${name}`, { qos: 1 })).rejects.toThrow(/Not authorized/);
      } finally {
        await spy.endAsync();
      }
      expect((await presenceOf(harper, name)).state).toBe('online');
    } finally {
      await client.endAsync();
    }
  });
});

describe('device presence after a restart', () => {
  let own: TestHarper | undefined;
  afterAll(async () => {
    await own?.dispose();
  });

  it('a Harper killed while a device is connected marks the device offline when it starts again', async () => {
    own = await startTestHarper();
    const name = `${run}-restart`;
    const device = await createUser(own.endpoints, 'device', name);
    const client: MqttClient = await connectMqtt(own.endpoints, { credentials: device });
    client.on('error', () => undefined); // the server goes away under it
    await eventually(
      () => presenceOf(own!.endpoints, name),
      (record) => record?.state === 'online',
      10_000,
      'online',
    );
    await own.instance.stop('SIGKILL');
    client.end(true);
    const { dataDir, endpoints } = own;
    own = await startTestHarper({ dataDir, admin: endpoints.admin });
    const offline = await eventually(
      () => presenceOf(own!.endpoints, name),
      (record) => record?.state === 'offline',
      20_000,
      'offline after the restart',
    );
    expect(offline.via).toBe('mqtt');
  }, 120_000);
});

describe('device presence on a cluster', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster();
  }, 180_000);
  afterAll(async () => {
    await cluster?.dispose();
  });

  it('a device on node B is online on node A; connected to both, offline only when both connections end; a killed and restarted B clears its connections', async () => {
    const [a, b] = cluster.nodes;
    const name = `${run}-cluster`;
    // Written to each node, as the users CLI does.
    const device = await createUser(a.endpoints, 'device', name);
    await operations(b.endpoints)
      .addUser(name, 'device', device.password)
      .catch(() => undefined); // already replicated
    await operations(b.endpoints).setGrants({ id: name, sensors: [], signs: [] });
    const onA = sseSubscriber(a.endpoints, `/presence/${name}`);
    try {
      const onB = await connectMqtt(b.endpoints, { credentials: device });
      await onA.inbox.waitFor(presenceEvent(name, 'online'), 15_000, 'online on A');

      const alsoOnA = await connectMqtt(a.endpoints, { credentials: device });
      await onB.endAsync();
      // B's connection ended, A's is still open: online on both nodes, and never offline.
      await eventually(
        () => presenceOf(b.endpoints, name),
        (record) => record.state === 'online',
        15_000,
      );
      await alsoOnA.endAsync();
      await onA.inbox.waitFor(presenceEvent(name, 'offline'), 15_000, 'offline on A');
      expect(onA.inbox.filter(presenceEvent(name, 'offline'))).toHaveLength(1);
      await eventually(
        () => presenceOf(b.endpoints, name),
        (record) => record.state === 'offline',
        15_000,
        'offline on B',
      );

      // A device on B when B dies: when B starts again, its previous process's connection is gone.
      const again = await connectMqtt(b.endpoints, { credentials: device });
      again.on('error', () => undefined);
      await eventually(
        () => presenceOf(a.endpoints, name),
        (record) => record.state === 'online',
        15_000,
        'online on A again',
      );
      await b.instance.stop('SIGKILL');
      again.end(true);
      await cluster.restart(b);
      await eventually(
        () => presenceOf(a.endpoints, name),
        (record) => record.state === 'offline',
        30_000,
        'offline on A after B restarted',
      );
      await eventually(
        () => presenceOf(b.endpoints, name),
        (record) => record.state === 'offline',
        15_000,
        'offline on B after its restart',
      );
    } finally {
      await onA.close();
    }
  }, 180_000);
});
