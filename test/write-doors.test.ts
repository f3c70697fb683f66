/**
 * Every write door of every exported table goes through the table's rules or is refused.
 * `POST /signs/` once stored an invalid colour, a control character and a forged
 * author, because the class had no `post` and Harper's table method stored the body as sent.
 *
 * The exported resources are read from resources.ts: a new export without a row in TABLES (or in
 * NOT_TABLES, for resources that are not tables) fails this file, so a new table cannot forget a
 * door. Each table is then sent a write its rules refuse, through every door, by a user who has
 * the right to write it (so rights cannot hide a missing check): REST PUT / PATCH / POST (to the
 * collection and to a record), MQTT 5 publish with and without retain, a WebSocket message on the
 * record's and the table's socket, and the operations API for every non-admin role. Each must be
 * refused with a JSON error (REST 400 from the rules, 403 from the policy or 405 for a door the
 * table does not have; MQTT reason code >= 128; a WebSocket error reply; the operations API 403,
 * for its record writes and SQL alike), and nothing may be stored anywhere in the table. DELETE
 * carries no data: it must be refused to roles without the policy's delete right.
 */
import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectMqtt } from './harness/mqtt.js';
import { basicAuth, rest } from './harness/rest.js';
import { createUser, operations, type TestRole } from './harness/users.js';
import { wsSubscriber } from './harness/ws.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

const harper = inject('harper');
const run = `wd${Date.now().toString(36)}`;

type Writer = 'admin' | 'operator' | 'device';

interface TableCase {
  /** The table behind the export (schema.graphql), for the operations API and the stored check. */
  table: string;
  /** Who has the right to write it (the policy of lib/access/policy.ts); the device writes its own id. */
  writer: Writer;
  /** Who writes through the table's own socket, when the writer may not open it (a device). */
  tableWriter?: Writer;
  /** A record id (path below the export) the writer may write. */
  id: string;
  /** A write the table's rules refuse; it carries `run`, so any stored trace of it can be found. */
  bad: unknown;
}

const deep = (levels: number): unknown => (levels === 0 ? { note: run } : { n: deep(levels - 1) });
const device = `${run}-dev`;
const forged = { color: 'red', message: `\u0007${run}`, updatedBy: 'admin' };

/** Every exported table and how to try its doors. */
const TABLES: Record<string, TableCase> = {
  sensors: {
    table: 'sensors',
    writer: 'device',
    tableWriter: 'admin',
    id: device,
    bad: { location: 'x', temperature: 1, updatedBy: run },
  },
  signs: { table: 'signs', writer: 'operator', id: `${run}-sign`, bad: forged },
  'led-sign': { table: 'signFields', writer: 'operator', id: `${run}-sign/message`, bad: `\u0007${run}` },
  rules: {
    table: 'rules',
    writer: 'operator',
    id: `${run}-rule`,
    bad: { sensorId: '*', field: 'temperature', above: 1, note: run },
  },
  '': { table: 'topics', writer: 'admin', id: `${run}/topic`, bad: deep(40) },
  readings: {
    table: 'readings',
    writer: 'admin',
    id: `${run}-reading`,
    bad: { sensorId: run, time: 1, location: 'x', temperature: 1 },
  },
  alerts: {
    table: 'alerts',
    writer: 'admin',
    id: `${run}-alert`,
    bad: { ruleId: run, sensorId: run, state: 'firing' },
  },
  presence: {
    table: 'presence',
    writer: 'admin',
    id: `${run}-device`,
    bad: { state: 'online', since: 1, lastSeen: 1, via: run },
  },
};
/**
 * Exports that are not tables, with the one door each implements (lib/resources/stats.ts, rollups.ts,
 * shutdown.ts, metrics-endpoint.ts, session.ts); every other write door must be refused (Harper's own 405 for a method a resource
 * lacks).
 */
const NOT_TABLES: Record<string, { path: string; door: string }> = {
  stats: { path: '/stats/x', door: 'GET' },
  rollups: { path: '/rollups/x', door: 'GET' },
  'server-notice': { path: '/server-notice', door: 'POST (admin only)' },
  metrics: { path: '/metrics', door: 'GET (admin and monitor)' },
  login: { path: '/login', door: 'POST' },
  logout: { path: '/logout', door: 'POST' },
};

const users: Partial<Record<TestRole | 'admin', AdminCredentials>> = {};
const credentialsOf = (writer: Writer) => users[writer]!;
const pathOf = (name: string, id = '') => (name === '' ? `/${id}` : `/${name}/${id}`);
const topicOf = (name: string, id: string) => (name === '' ? id : `${name}/${id}`);
const json = (value: unknown) => JSON.stringify(value);
/** A body with the id in it, for the doors that take the id from the body (POST, table socket). */
const withId = (c: TableCase) =>
  c.bad !== null && typeof c.bad === 'object' ? { ...c.bad, id: c.id } : { id: c.id, value: c.bad };

const clients: MqttClient[] = [];

beforeAll(async () => {
  users.admin = harper.admin;
  users.operator = await createUser(harper, 'operator', `${run}-op`);
  users.viewer = await createUser(harper, 'viewer', `${run}-viewer`);
  users.device = await createUser(harper, 'device', device);
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.endAsync()));
  // Whatever any door did, nothing of this run is stored in any exported table.
  const client = operations(harper);
  for (const [name, c] of Object.entries(TABLES)) {
    let rows = await client.call<unknown[]>({ operation: 'sql', sql: `SELECT * FROM data.${c.table}` });
    // The server itself writes the presence of this run's device user when it connects: only a
    // record carrying the refused write's marker would be a trace of it.
    if (c.table === 'presence') rows = rows.filter((row) => (row as { via?: unknown }).via === run);
    expect(
      json(rows).includes(run) ? json(rows) : '',
      `a refused write was stored in ${name === '' ? 'the catch-all' : name}`,
    ).toBe('');
  }
});

it('every exported resource is listed here (a new table must say how each of its doors is guarded)', () => {
  const source = readFileSync(new URL('../resources.ts', import.meta.url), 'utf8');
  const exported = [...source.matchAll(/export \{([^}]*)\}/g)].flatMap((match) =>
    match[1].split(',').map((part) =>
      part
        .trim()
        .split(/\s+as\s+/)[1]
        ?.replace(/'/g, ''),
    ),
  );
  expect(exported.filter((name) => name !== undefined).sort()).toEqual(
    [...Object.keys(TABLES), ...Object.keys(NOT_TABLES)].sort(),
  );
});

const REFUSED = [400, 403, 405, 413];

describe.each(Object.entries(TABLES))('exported table "%s"', (name, c) => {
  it.each(['PUT', 'PATCH', 'POST'])('REST %s to a record: refused with a JSON error', async (method) => {
    const response = await rest(harper, method, pathOf(name, c.id), { json: c.bad, auth: credentialsOf(c.writer) });
    expect(REFUSED, `${method} ${pathOf(name, c.id)} -> ${response.status} ${response.text}`).toContain(
      response.status,
    );
    expect(response.body).toMatchObject({ error: expect.any(String), message: expect.any(String) });
  });

  it('REST POST to the collection (the id in the body): refused with a JSON error', async () => {
    const response = await rest(harper, 'POST', pathOf(name, name === '' ? `${run}/` : ''), {
      json: withId(c),
      auth: credentialsOf(c.writer),
    });
    expect(REFUSED, `POST -> ${response.status} ${response.text}`).toContain(response.status);
    expect(response.body).toMatchObject({ error: expect.any(String), message: expect.any(String) });
  });

  it('REST DELETE: refused to a role without the delete right', async () => {
    const response = await rest(harper, 'DELETE', pathOf(name, c.id), { auth: users.viewer! });
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ error: 'forbidden' });
  });

  it.each([true, false])('MQTT 5 publish (retain %s): refused with a reason code', async (retain) => {
    const client = await connectMqtt(harper, { credentials: credentialsOf(c.writer), protocolVersion: 5 });
    clients.push(client);
    const payload = typeof c.bad === 'string' ? c.bad : json(c.bad);
    const code = await client.publishAsync(topicOf(name, c.id), payload, { qos: 1, retain }).then(
      () => 0,
      (error: { code?: number }) => error.code ?? -1,
    );
    expect(code).toBeGreaterThanOrEqual(128);
  });

  it.each(['record', 'table'])('WebSocket message on the %s socket: answered with an error', async (level) => {
    const writer = level === 'record' ? c.writer : (c.tableWriter ?? c.writer);
    const socket = await wsSubscriber(
      harper,
      level === 'record' ? pathOf(name, c.id) : pathOf(name, name === '' ? `${run}/` : ''),
      { credentials: credentialsOf(writer) },
    );
    try {
      socket.send(level === 'record' ? c.bad : withId(c));
      const reply = await Promise.race([
        socket.inbox.waitFor((item) => item.type === 'error', 5000, 'an error reply'),
        socket.closed.then((closed) => ({ type: 'closed', value: closed })),
      ]);
      expect(reply.type, JSON.stringify(reply)).toBe('error');
      expect(reply.value).toMatchObject({ error: expect.any(String), message: expect.any(String) });
    } finally {
      await socket.close();
    }
  });

  it.each(['operator', 'viewer', 'device'] as const)(
    'operations API as %s: no insert, upsert, update, delete or SQL write',
    async (role) => {
      const record = { ...(withId(c) as object) };
      const value = `'${run}'`;
      const attempts = [
        ...['insert', 'upsert', 'update'].map((operation) => ({
          operation,
          database: 'data',
          table: c.table,
          records: [record],
        })),
        { operation: 'delete', database: 'data', table: c.table, ids: [c.id] },
        { operation: 'sql', sql: `INSERT INTO data.${c.table} (id) VALUES (${value})` },
        // Aimed at this run's id only: if a regression let them through, other tests' data is safe.
        { operation: 'sql', sql: `UPDATE data.${c.table} SET id = ${value} WHERE id = '${c.id}'` },
        { operation: 'sql', sql: `DELETE FROM data.${c.table} WHERE id = '${c.id}'` },
      ];
      for (const attempt of attempts) {
        const response = await fetch(harper.operationsUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: basicAuth(users[role]!) },
          body: json(attempt),
        });
        const text = await response.text();
        expect(response.status, `${json(attempt)} as ${role}: ${text}`).toBe(403);
      }
    },
  );
});

describe.each(Object.entries(NOT_TABLES))('exported resource "%s" (not a table)', (name, { path, door }) => {
  it(`REST PUT, PATCH and DELETE are refused (its one door is ${door})`, async () => {
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const response = await rest(harper, method, path, { json: { note: run }, auth: users.viewer! });
      expect([403, 405], `${method} ${path} -> ${response.status} ${response.text}`).toContain(response.status);
    }
  });

  it.each([true, false])('MQTT 5 publish (retain %s): refused with a reason code', async (retain) => {
    const client = await connectMqtt(harper, { credentials: users.viewer!, protocolVersion: 5 });
    clients.push(client);
    const code = await client.publishAsync(path.slice(1), json({ note: run }), { qos: 1, retain }).then(
      () => 0,
      (error: { code?: number }) => error.code ?? -1,
    );
    expect(code).toBeGreaterThanOrEqual(128);
  });
});
