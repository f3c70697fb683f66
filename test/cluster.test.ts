/**
 * The component on two real Harper nodes joined by Harper's replication (the code `npm run cluster`
 * uses): what a client of node A does reaches clients of node B, over every protocol; history,
 * alerts and statistics agree; a node that was down catches up; conflicting writes converge;
 * users made with the users CLI hold on both nodes. Then `npm run cluster` itself.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNodeAddress } from '../launcher/cluster-nodes.js';
import { COMPONENT_DIR, freePort, type AdminCredentials } from '../launcher/harper-process.js';
import { OperationsClient } from '../launcher/operations-client.js';
import { endpointsOf, eventually, startTestCluster, type TestCluster } from './harness/cluster.js';
import type { HarperEndpoints } from './harness/harper.js';
import { untilLive, valueField, type Received } from './harness/inbox.js';
import { connectMqtt, mqttSubscriber } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';

const run = `cl${Date.now().toString(36)}`;
let cluster: TestCluster;
let A: HarperEndpoints;
let B: HarperEndpoints;

interface Sensor {
  id: string;
  location: string;
  temperature: number;
  updatedAt: number;
}

const put = (node: HarperEndpoints, id: string, body: object, auth?: AdminCredentials) =>
  rest(node, 'PUT', `/sensors/${id}`, { json: body, auth });
const get = async <T>(node: HarperEndpoints, path: string) => (await rest<T>(node, 'GET', path)).body;
const readings = (node: HarperEndpoints, sensorId: string) =>
  get<{ id: string; temperature: number; time: number; location: string }[]>(
    node,
    `/readings/?sensorId=${sensorId}&sort(time)&limit(1000)`,
  );
const alerts = (node: HarperEndpoints, sensorId: string) =>
  get<{ id: string; state: string; value: number }[]>(node, `/alerts/?sensorId=${sensorId}&sort(time)`);

/** Runs a compiled CLI of ours to the end. */
function cli(
  script: string,
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(COMPONENT_DIR, 'dist', 'scripts', script), ...args], {
      env: { ...process.env, ...env },
    });
    if (stdin !== undefined) child.stdin.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('two nodes joined by Harper replication', () => {
  beforeAll(async () => {
    cluster = await startTestCluster();
    [A, B] = cluster.nodes.map((node) => node.endpoints);
  }, 120_000);

  afterAll(async () => {
    await cluster?.dispose();
  });

  it('an MQTT publish on A reaches SSE, WebSocket and MQTT subscribers on B, retained and not; only the retained one is stored on B', async () => {
    const id = `${run}-fan`;
    const subscribers = [
      sseSubscriber(B, `/sensors/${id}`, { name: 'SSE on B' }),
      await wsSubscriber(B, `/sensors/${id}`, { name: 'WS on B' }),
      await mqttSubscriber(B, `sensors/${id}`, { name: 'MQTT on B' }),
    ];
    const publisher = await connectMqtt(A);
    try {
      // The canary is itself a non-retained publish on A: each subscriber on B is live once it arrives.
      const isCanary = (item: Received) => valueField(item, 'location') === 'canary';
      await untilLive(
        subscribers,
        () =>
          publisher.publishAsync(`sensors/${id}`, JSON.stringify({ location: 'canary', temperature: 0 }), { qos: 1 }),
        isCanary,
      );
      await publisher.publishAsync(`sensors/${id}`, JSON.stringify({ location: 'lab', temperature: 21 }), {
        qos: 1,
        retain: true,
      });
      await publisher.publishAsync(`sensors/${id}`, JSON.stringify({ location: 'lab', temperature: 22 }), {
        qos: 1,
        retain: false,
      });
      for (const subscriber of subscribers) {
        await subscriber.inbox.waitFor(
          (item) => valueField(item, 'temperature') === 21,
          10_000,
          `${subscriber.name}: the retained publish`,
        );
        await subscriber.inbox.waitFor(
          (item) => valueField(item, 'temperature') === 22,
          10_000,
          `${subscriber.name}: the non-retained publish`,
        );
      }
      const stored = await eventually(
        () => get<Sensor>(B, `/sensors/${id}`),
        (sensor) => sensor?.temperature !== undefined,
      );
      expect(stored).toMatchObject({ id, location: 'lab', temperature: 21 });
    } finally {
      await publisher.endAsync();
      await Promise.all(subscribers.map((subscriber) => subscriber.close()));
    }
  });

  it('a REST write on B is readable on A', async () => {
    const id = `${run}-rest`;
    expect((await put(B, id, { location: 'hall', temperature: 19.5 })).status).toBe(204);
    const seen = await eventually(
      () => rest<Sensor>(A, 'GET', `/sensors/${id}`),
      (response) => response.status === 200,
    );
    expect(seen.body).toMatchObject({ id, location: 'hall', temperature: 19.5 });
  });

  it('history, alerts and statistics written on A are the same on B', async () => {
    const id = `${run}-hist`;
    expect(
      (
        await rest(A, 'PUT', `/rules/${run}-hot`, {
          json: { sensorId: id, field: 'temperature', above: 30, hysteresis: 2 },
        })
      ).status,
    ).toBe(204);
    const sequence = [25, 31, 32, 29, 27.5, 31, 20];
    for (const temperature of sequence) expect((await put(A, id, { location: 'lab', temperature })).status).toBe(204);

    const onA = await readings(A, id);
    expect(onA.map((reading) => reading.temperature)).toEqual(sequence);
    expect(
      await eventually(
        () => readings(B, id),
        (list) => list.length >= sequence.length,
      ),
    ).toEqual(onA);

    const alertsOnA = await alerts(A, id);
    expect(alertsOnA.map((alert) => [alert.state, alert.value])).toEqual([
      ['firing', 31],
      ['resolved', 27.5],
      ['firing', 31],
      ['resolved', 20],
    ]);
    expect(
      await eventually(
        () => alerts(B, id),
        (list) => list.length >= alertsOnA.length,
      ),
    ).toEqual(alertsOnA);

    const statsOnA = await get<{ hour: { temperature: { count: number } } }>(A, `/stats/${id}`);
    expect(statsOnA.hour.temperature.count).toBe(sequence.length);
    expect(
      await eventually(
        () => get<typeof statsOnA>(B, `/stats/${id}`),
        (stats) => stats.hour.temperature.count >= sequence.length,
      ),
    ).toEqual(statsOnA);
  });

  it('concurrent conflicting writes on A and B converge to the same state on both, and no reading is lost', async () => {
    const id = `${run}-conflict`;
    for (let i = 0; i < 20; i++) {
      const [onA, onB] = await Promise.all([
        put(A, id, { location: 'A', temperature: i }),
        put(B, id, { location: 'B', temperature: 100 + i }),
      ]);
      expect([onA.status, onB.status]).toEqual([204, 204]);
    }
    const converged = await eventually(
      async () => [await get<Sensor>(A, `/sensors/${id}`), await get<Sensor>(B, `/sensors/${id}`)],
      ([a, b]) => JSON.stringify(a) === JSON.stringify(b),
    );
    expect([19, 119]).toContain(converged[0].temperature);
    // Every write is in the history of both nodes, under an id of its own (the node is part of
    // it): 40 distinct readings on each, the same on both.
    const both = await eventually(
      async () => [await readings(A, id), await readings(B, id)],
      ([a, b]) => a.length >= 40 && b.length >= 40,
    );
    const fromNode = (list: (typeof both)[0], location: string) =>
      list.filter((reading) => reading.location === location).map((reading) => reading.temperature);
    for (const list of both) {
      expect(fromNode(list, 'A')).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(fromNode(list, 'B')).toEqual(Array.from({ length: 20 }, (_, i) => 100 + i));
      expect(new Set(list.map((reading) => reading.id)).size).toBe(40);
    }
    expect(both[0]).toEqual(both[1]);

    // The latest write wins on both: one on A, then (after it was acknowledged) one on B. Each
    // node stamps its writes with its own clock, aligned to Date.now() at millisecond precision,
    // so two nodes' stamps may differ by about a millisecond: "later" must be later than that.
    expect((await put(A, id, { location: 'A', temperature: 1000 })).status).toBe(204);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await put(B, id, { location: 'B', temperature: 2000 })).status).toBe(204);
    for (const node of [A, B])
      expect(
        await eventually(
          () => get<Sensor>(node, `/sensors/${id}`),
          (sensor) => sensor.temperature === 2000,
        ),
      ).toMatchObject({ location: 'B' });
  });

  it('per-device rights hold on both nodes; the users CLI applies add, grant, rotate and remove to every node', async () => {
    const device = `${run}-dev`;
    const users = (args: string[]) =>
      cli('users.js', [...args, '--json'], {
        CLI_TARGET: `${A.operationsUrl},${B.operationsUrl}`,
        CLI_TARGET_USERNAME: cluster.admin.username,
        CLI_TARGET_PASSWORD: cluster.admin.password,
      });
    const added = await users(['add', device, '--role', 'device', '--sensors', `${device}-gw`]);
    expect(added.code, added.stderr).toBe(0);
    let credentials = { username: device, password: (JSON.parse(added.stdout) as { password: string }).password };
    const reading = { location: 'd', temperature: 1 };
    for (const node of [A, B]) {
      expect((await put(node, device, reading, credentials)).status).toBe(204);
      expect((await put(node, `${device}-gw`, reading, credentials)).status).toBe(204);
      expect((await put(node, `${run}-other`, reading, credentials)).status).toBe(403);
      expect((await rest(node, 'GET', '/sensors/', { auth: credentials })).status).toBe(403);
      const mqtt = await connectMqtt(node, { credentials });
      try {
        await expect(mqtt.subscribeAsync('sensors/#', { qos: 1 })).rejects.toThrow(/Not authorized/);
      } finally {
        await mqtt.endAsync();
      }
    }

    const granted = await users(['grant', device, '--sensors', `${device}-gw2`]);
    expect(granted.code, granted.stderr).toBe(0);
    for (const node of [A, B]) {
      expect((await put(node, `${device}-gw2`, reading, credentials)).status).toBe(204);
      expect((await put(node, `${device}-gw`, reading, credentials)).status).toBe(403);
    }

    const rotated = await users(['rotate', device]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const old = credentials;
    credentials = { username: device, password: (JSON.parse(rotated.stdout) as { password: string }).password };
    for (const node of [A, B]) {
      expect((await put(node, device, reading, credentials)).status).toBe(204);
      expect((await put(node, device, reading, old)).status).toBe(401);
    }

    const listed = await users(['list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(
      (JSON.parse(listed.stdout) as { username: string; missingOn?: string[] }[]).find(
        (row) => row.username === device,
      ),
    ).not.toHaveProperty('missingOn');

    const removed = await users(['remove', device]);
    expect(removed.code, removed.stderr).toBe(0);
    for (const node of [A, B]) expect((await put(node, device, reading, credentials)).status).toBe(401);
  });

  it('dashboard sessions on both nodes end when the users CLI rotates or removes the user, and re-adding the name does not revive them', async () => {
    const name = `${run}-op`;
    const users = (args: string[], stdin?: string) =>
      cli(
        'users.js',
        [...args, '--json'],
        {
          CLI_TARGET: `${A.operationsUrl},${B.operationsUrl}`,
          CLI_TARGET_USERNAME: cluster.admin.username,
          CLI_TARGET_PASSWORD: cluster.admin.password,
        },
        stdin,
      );
    const login = async (node: HarperEndpoints, password: string) => {
      const response = await rest(node, 'POST', '/login', { auth: null, json: { username: name, password } });
      expect(response.status, response.text).toBe(200);
      return (response.headers.get('set-cookie') ?? '').split(';')[0];
    };
    const loggedIn = async (node: HarperEndpoints, cookie: string) =>
      (await rest(node, 'GET', '/login', { auth: null, headers: { cookie } })).status;

    const added = await users(['add', name, '--role', 'operator']);
    expect(added.code, added.stderr).toBe(0);
    let password = (JSON.parse(added.stdout) as { password: string }).password;
    let cookies = [await login(A, password), await login(B, password)];
    expect([await loggedIn(A, cookies[0]), await loggedIn(B, cookies[1])]).toEqual([200, 200]);

    const rotated = await users(['rotate', name]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect([await loggedIn(A, cookies[0]), await loggedIn(B, cookies[1])]).toEqual([401, 401]);
    password = (JSON.parse(rotated.stdout) as { password: string }).password;
    cookies = [await login(A, password), await login(B, password)];

    const removed = await users(['remove', name]);
    expect(removed.code, removed.stderr).toBe(0);
    const readded = await users(['add', name, '--role', 'operator', '--password-stdin'], `${password}\n`);
    expect(readded.code, readded.stderr).toBe(0);
    expect([await loggedIn(A, cookies[0]), await loggedIn(B, cookies[1])]).toEqual([401, 401]);
  });

  it('B stopped, 100 writes on A, B restarted: B catches up completely', async () => {
    const id = `${run}-catchup`;
    const [, nodeB] = cluster.nodes;
    await cluster.stop(nodeB);
    for (let i = 1; i <= 100; i++) expect((await put(A, id, { location: 'c', temperature: i })).status).toBe(204);
    await cluster.restart(nodeB);
    const history = await eventually(
      () => readings(B, id),
      (list) => list.length >= 100,
      30_000,
      'catch-up',
    );
    expect(history.map((reading) => reading.temperature)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(history).toEqual(await readings(A, id));
    expect(await get<Sensor>(B, `/sensors/${id}`)).toEqual(await get<Sensor>(A, `/sensors/${id}`));
  }, 120_000);

  it('bursts committed in group-commit batches reach the other node completely, live and after a restart', async () => {
    // Many sensors' writes, fired without waiting, so that each transaction carries several
    // sensors' readings and states together: every reading must still replicate, in order.
    const sensors = Array.from({ length: 20 }, (_, i) => `${run}-burst-${i}`);
    const perSensor = 25;
    const burst = async (phase: string) => {
      const publisher = await connectMqtt(A);
      try {
        const acks: Promise<unknown>[] = [];
        for (let n = 1; n <= perSensor; n++) {
          for (const id of sensors)
            acks.push(
              publisher.publishAsync(`sensors/${id}`, JSON.stringify({ location: phase, temperature: n }), {
                qos: 1,
                retain: true,
              }),
            );
        }
        await Promise.all(acks);
      } finally {
        await publisher.endAsync();
      }
    };
    const expectSame = async (count: number) => {
      for (const id of sensors) {
        const onA = await readings(A, id);
        expect(
          onA.map((reading) => reading.temperature),
          id,
        ).toEqual(Array.from({ length: count }, (_, i) => (i % perSensor) + 1));
        const onB = await eventually(
          () => readings(B, id),
          (list) => list.length >= count,
          30_000,
          `readings of ${id} on B`,
        );
        expect(onB, id).toEqual(onA);
        expect(await get<Sensor>(B, `/sensors/${id}`)).toEqual(await get<Sensor>(A, `/sensors/${id}`));
      }
    };
    await burst('live');
    await expectSame(perSensor);

    const [, nodeB] = cluster.nodes;
    await cluster.stop(nodeB);
    await burst('while B was down');
    await cluster.restart(nodeB);
    await expectSame(2 * perSensor);
  }, 180_000);

  it("a replication connection that died inside Harper during a certificate change is revived: the join restarts that node's workers", async () => {
    // Harper rebuilds each worker's replication certificates from empty shortly after any
    // certificate change; a connection attempt in that window throws "Unable to find a valid
    // certificate …" and that worker never tries again. Provoke it: B down (A retries its
    // connection every half second or so) while A's certificates keep changing.
    const [, nodeB] = cluster.nodes;
    const operations = new OperationsClient(A.operationsUrl, cluster.admin);
    const deaths = () =>
      (readFileSync(A.logFile, 'utf8').match(/Unable to find a valid certificate to use for replication/g) ?? [])
        .length;
    const before = deaths();
    const certificates = await operations.call<{ name: string; certificate: string; is_authority: boolean }[]>({
      operation: 'list_certificates',
    });
    const authority = certificates.find((certificate) => certificate.is_authority)!;
    await cluster.stop(nodeB);
    const names = ['churn-0', 'churn-1'];
    const deadline = Date.now() + 60_000;
    for (let i = 0; deaths() === before; i++) {
      if (Date.now() > deadline) throw new Error('no replication connection died within a minute of certificate churn');
      await operations.call({
        operation: 'add_certificate',
        name: names[i % names.length],
        certificate: authority.certificate,
        is_authority: true,
      });
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    for (const name of names) await operations.call({ operation: 'remove_certificate', name });
    // A short join timeout: half of it waits for the dead connection, then A's workers restart.
    await cluster.restart(nodeB, 30_000);
    const id = `${run}-revived`;
    expect((await put(A, id, { location: 'r', temperature: 1 })).status).toBe(204);
    await eventually(
      () => get<Sensor | undefined>(B, `/sensors/${id}`),
      (sensor) => sensor?.temperature === 1,
      15_000,
      'the write on A reaching B',
    );
  }, 150_000);
});

describe('npm run cluster', () => {
  it('starts two joined nodes, prints their endpoints and the admin credentials once, serves users on every node, and Ctrl-C stops both', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'backbone-cluster-cli-'));
    const ports = async () => `${await freePort()},${await freePort()}`;
    const env: Record<string, string> = {
      DATA_DIR: dataDir,
      CLUSTER_HTTP_PORTS: await ports(),
      CLUSTER_MQTT_PORTS: await ports(),
      CLUSTER_OPERATIONS_PORTS: await ports(),
      CLUSTER_REPLICATION_PORTS: await ports(),
    };
    const child = spawn(process.execPath, [join(COMPONENT_DIR, 'dist', 'scripts', 'cluster.js')], {
      env: { ...process.env, ...env, HDB_ADMIN_USERNAME: '', HDB_ADMIN_PASSWORD: '' },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually(
        async () => stdout,
        (text) => text.includes('Ctrl-C stops every node.') || child.exitCode !== null,
        120_000,
        'the cluster summary',
      );
      expect(child.exitCode, stdout).toBeNull();
      const password = /password \(shown once, saved in .*credentials\.json\):\n\s+(\S+)/.exec(stdout)?.[1];
      expect(password, stdout).toBeTruthy();
      const admin = { username: 'admin', password: password! };
      expect(JSON.parse(readFileSync(join(dataDir, 'cluster', 'credentials.json'), 'utf8'))).toEqual(admin);

      const nodes = (
        JSON.parse(readFileSync(join(dataDir, 'cluster', 'nodes.json'), 'utf8')) as { nodes: ClusterNodeAddress[] }
      ).nodes;
      expect(nodes.map((node) => node.hostname)).toEqual(['127.0.0.1', '127.0.0.2']);
      for (const node of nodes) {
        expect(stdout).toContain(`Dashboard   ${node.httpUrl}/`);
        expect(stdout).toContain(`MQTT        ${node.mqttUrl}`);
      }
      expect(JSON.stringify(nodes)).not.toContain(password);
      const [a, b] = nodes.map((node) =>
        endpointsOf(
          {
            name: node.name,
            hostname: node.hostname,
            dataDir: '',
            replicationPort: 0,
            ports: {
              http: Number(new URL(node.httpUrl).port),
              mqtt: Number(new URL(node.mqttUrl).port),
              operations: Number(new URL(node.operationsUrl).port),
            },
          },
          admin,
        ),
      );

      expect((await put(a, `${run}-cli`, { location: 'cli', temperature: 5 })).status).toBe(204);
      expect(
        await eventually(
          () => get<Sensor>(b, `/sensors/${run}-cli`),
          (sensor) => sensor?.temperature === 5,
        ),
      ).toMatchObject({ location: 'cli' });

      const added = await cli('users.js', ['--cluster', 'add', `${run}-viewer`, '--role', 'viewer', '--json'], {
        DATA_DIR: dataDir,
        CLI_TARGET_USERNAME: '',
        CLI_TARGET_PASSWORD: '',
        HDB_ADMIN_USERNAME: '',
        HDB_ADMIN_PASSWORD: '',
      });
      expect(added.code, added.stderr).toBe(0);
      const viewer = {
        username: `${run}-viewer`,
        password: (JSON.parse(added.stdout) as { password: string }).password,
      };
      for (const node of [a, b])
        expect((await rest(node, 'GET', `/sensors/${run}-cli`, { auth: viewer })).status).toBe(200);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(stdout).toContain('All nodes stopped.');
    for (const name of ['a', 'b']) {
      const pidFile = join(dataDir, 'cluster', name, 'root', 'hdb.pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      expect(
        pid && existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('harperdb'),
        `node ${name} still running`,
      ).toBeFalsy();
    }
    rmSync(dataDir, { recursive: true, force: true });
  }, 180_000);
});
