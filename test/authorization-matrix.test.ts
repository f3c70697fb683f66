/**
 * Role x protocol x action -> allow or deny, every cell asserted and printed as a table.
 *
 * Roles: admin, operator, viewer, a device, and anonymous. "own" is the sensor named after the
 * user (a device's own sensor); "other" is a sensor that belongs to nobody in particular.
 * Denied writes must also leave nothing stored; denied subscriptions must deliver nothing.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectMqtt, reasonCodeOf } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import { createUser } from './harness/users.js';
import type { AdminCredentials } from '../launcher/harper-process.js';

const harper = inject('harper');
const run = Date.now().toString(36);

type RoleName = 'admin' | 'operator' | 'viewer' | 'device' | 'anonymous';
type Action =
  'read own' | 'read other' | 'subscribe own' | 'subscribe other' | 'wildcard subscribe' | 'write own' | 'write other';
type Protocol = 'REST' | 'SSE' | 'WebSocket' | 'MQTT 5' | 'MQTT 3.1.1' | 'MQTT/WS';
type Verdict = 'allow' | 'deny';

const roles: RoleName[] = ['admin', 'operator', 'viewer', 'device', 'anonymous'];
const protocols: Protocol[] = ['REST', 'SSE', 'WebSocket', 'MQTT 5', 'MQTT 3.1.1', 'MQTT/WS'];
const actions: Action[] = [
  'read own',
  'read other',
  'subscribe own',
  'subscribe other',
  'wildcard subscribe',
  'write own',
  'write other',
];

/** Which protocol carries which action (REST reads and writes; SSE only subscribes; ...). */
const carries: Record<Protocol, Action[]> = {
  REST: ['read own', 'read other', 'wildcard subscribe', 'write own', 'write other'],
  SSE: ['subscribe own', 'subscribe other', 'wildcard subscribe'],
  WebSocket: ['subscribe own', 'subscribe other', 'wildcard subscribe', 'write own', 'write other'],
  'MQTT 5': ['subscribe own', 'subscribe other', 'wildcard subscribe', 'write own', 'write other'],
  'MQTT 3.1.1': ['subscribe own', 'subscribe other', 'wildcard subscribe', 'write own', 'write other'],
  'MQTT/WS': ['subscribe own', 'subscribe other', 'wildcard subscribe', 'write own', 'write other'],
};

/** The policy under test (lib/access/policy.ts), written out independently. */
function expected(role: RoleName, action: Action): Verdict {
  switch (role) {
    case 'admin':
      return 'allow';
    case 'operator':
    case 'viewer':
      return action.startsWith('write') ? 'deny' : 'allow';
    case 'device':
      return action.endsWith(' own') ? 'allow' : 'deny';
    case 'anonymous':
      return 'deny';
  }
}

const credentials = new Map<RoleName, AdminCredentials | null>();
const usernames: Record<RoleName, string> = {
  admin: harper.admin.username,
  operator: `op-${run}`,
  viewer: `viewer-${run}`,
  device: `dev-${run}`,
  anonymous: `anon-${run}`,
};
const other = `other-${run}`;
const ownOf = (role: RoleName) => usernames[role];
const results = new Map<string, string>();
let marker = 0;

beforeAll(async () => {
  credentials.set('admin', harper.admin);
  credentials.set('anonymous', null);
  credentials.set('operator', await createUser(harper, 'operator', usernames.operator));
  credentials.set('viewer', await createUser(harper, 'viewer', usernames.viewer));
  credentials.set('device', await createUser(harper, 'device', usernames.device));
  // Every "own" and the "other" sensor exist, so a permitted subscription starts with their state.
  for (const id of [...roles.map(ownOf), other]) {
    expect((await rest(harper, 'PUT', `/sensors/${id}`, { json: { location: 'matrix', temperature: 0 } })).status).toBe(
      204,
    );
  }
});

afterAll(() => {
  const width = 20;
  const lines: string[] = [];
  for (const protocol of protocols) {
    lines.push(`\n${protocol}`.padEnd(12) + actions.map((action) => action.padEnd(width)).join(''));
    for (const role of roles) {
      lines.push(
        `  ${role}`.padEnd(12) +
          actions.map((action) => (results.get(`${role}|${protocol}|${action}`) ?? '-').padEnd(width)).join(''),
      );
    }
  }
  console.log(`\nAuthorisation matrix (verdict, as observed):${lines.join('\n')}\n`);
});

/** Reads a sensor as the admin, to check what a write did or did not store. */
async function storedTemperature(id: string): Promise<unknown> {
  return (
    (await rest<{ temperature?: number }>(harper, 'GET', `/sensors/${id}`)).body as { temperature?: number } | undefined
  )?.temperature;
}

/** Runs one cell; returns what was observed as "allow" or "deny <how>". */
async function attempt(role: RoleName, protocol: Protocol, action: Action): Promise<{ verdict: Verdict; how: string }> {
  const who = credentials.get(role) ?? null;
  const target = action === 'wildcard subscribe' ? null : action.endsWith(' own') ? ownOf(role) : other;
  const reading = { location: 'matrix', temperature: 1000 + ++marker };

  if (action.startsWith('write')) {
    const id = target!;
    switch (protocol) {
      case 'REST': {
        const response = await rest(harper, 'PUT', `/sensors/${id}`, { json: reading, auth: who });
        return writeOutcome(id, reading.temperature, `${response.status}`, response.status === 204);
      }
      case 'WebSocket': {
        const socket = await wsSubscriber(harper, `/sensors/${id}`, { credentials: who });
        const outcome = await Promise.race([
          socket.closed.then((closed) => ({ ok: false, how: `close ${closed.code}` })),
          (async () => {
            socket.send(reading);
            const reply = await socket.inbox.waitFor((item) => item.type === 'ack' || item.type === 'error');
            return {
              ok: reply.type === 'ack',
              how: reply.type === 'ack' ? 'ack' : `error ${(reply.value as { error: string }).error}`,
            };
          })(),
        ]);
        await socket.close();
        return writeOutcome(id, reading.temperature, outcome.how, outcome.ok);
      }
      default: {
        const client = await mqttFor(protocol, who);
        if (!client.ok) return { verdict: 'deny', how: client.how };
        try {
          const ack = await client.client
            .publishAsync(`sensors/${id}`, JSON.stringify(reading), { qos: 1, retain: true })
            .then(
              (packet) => reasonCodeOf(packet),
              (error: { code?: number }) => error.code ?? -1,
            );
          // MQTT 3.1.1 cannot signal a refusal: its PUBACK says nothing, only storage decides.
          return protocol === 'MQTT 3.1.1'
            ? writeOutcome(id, reading.temperature, 'PUBACK')
            : writeOutcome(id, reading.temperature, `PUBACK ${ack}`, ack === 0);
        } finally {
          await client.client.endAsync();
        }
      }
    }
  }

  switch (protocol) {
    case 'REST': {
      const response = await rest(harper, 'GET', target ? `/sensors/${target}` : '/sensors/', { auth: who });
      return { verdict: response.status === 200 ? 'allow' : 'deny', how: `${response.status}` };
    }
    case 'SSE': {
      const sse = sseSubscriber(harper, target ? `/sensors/${target}` : '/sensors/', { credentials: who });
      try {
        return await Promise.race([
          sse.inbox.waitFor(() => true).then(() => ({ verdict: 'allow' as const, how: 'event' })),
          sse.failed.then((failure) => ({ verdict: 'deny' as const, how: `${failure.status}` })),
        ]);
      } finally {
        await sse.close();
      }
    }
    case 'WebSocket': {
      const socket = await wsSubscriber(harper, target ? `/sensors/${target}` : '/sensors/', { credentials: who });
      try {
        return await Promise.race([
          socket.inbox.waitFor((item) => item.type === 'put').then(() => ({ verdict: 'allow' as const, how: 'event' })),
          socket.closed.then((closed) => ({ verdict: 'deny' as const, how: `close ${closed.code}` })),
        ]);
      } finally {
        await socket.close();
      }
    }
    default: {
      const client = await mqttFor(protocol, who);
      if (!client.ok) return { verdict: 'deny', how: client.how };
      try {
        // mqtt.js rejects a refused subscription, carrying the SUBACK.
        const code = await client.client.subscribeAsync(target ? `sensors/${target}` : 'sensors/#', { qos: 1 }).then(
          (granted) => granted[0]?.qos ?? -1,
          (error: { packet?: { granted?: number[] } }) => error.packet?.granted?.[0] ?? -1,
        );
        return { verdict: code >= 0 && code < 0x80 ? 'allow' : 'deny', how: `SUBACK ${code}` };
      } finally {
        await client.client.endAsync();
      }
    }
  }
}

/** A write is allowed when it was stored; where the protocol can say so, its answer must agree. */
async function writeOutcome(
  id: string,
  temperature: number,
  how: string,
  acknowledged?: boolean,
): Promise<{ verdict: Verdict; how: string }> {
  const stored = (await storedTemperature(id)) === temperature;
  if (acknowledged !== undefined && stored !== acknowledged) {
    throw new Error(`write to ${id} acknowledged=${acknowledged} but stored=${stored} (${how})`);
  }
  return { verdict: stored ? 'allow' : 'deny', how: stored ? how : `${how}, not stored` };
}

async function mqttFor(protocol: Protocol, who: AdminCredentials | null) {
  try {
    const client = await connectMqtt(harper, {
      protocolVersion: protocol === 'MQTT 3.1.1' ? 4 : 5,
      overWebSocket: protocol === 'MQTT/WS',
      credentials: who,
    });
    return { ok: true as const, client };
  } catch (error) {
    return { ok: false as const, how: `CONNACK ${(error as { code?: number }).code ?? 'refused'}` };
  }
}

for (const protocol of protocols) {
  describe(protocol, () => {
    for (const role of roles) {
      for (const action of carries[protocol]) {
        const verdict = expected(role, action);
        it(`${role} ${action} -> ${verdict}`, async () => {
          const observed = await attempt(role, protocol, action);
          results.set(`${role}|${protocol}|${action}`, `${observed.verdict} (${observed.how})`);
          expect(observed.verdict, observed.how).toBe(verdict);
          if (verdict === 'deny' && role !== 'anonymous') {
            // Authenticated but not allowed: a "forbidden" answer where the protocol can carry one.
            if (protocol === 'REST' || protocol === 'SSE') expect(observed.how).toMatch(/^403/);
            if (protocol === 'WebSocket') expect(observed.how).toMatch(/close 3003|error forbidden/);
            if (protocol === 'MQTT 5' || protocol === 'MQTT/WS') expect(observed.how).toMatch(/SUBACK 135|PUBACK 128/);
          }
          if (verdict === 'deny' && role === 'anonymous' && (protocol === 'REST' || protocol === 'SSE'))
            expect(observed.how).toMatch(/^401/);
        });
      }
    }
  });
}

/**
 * Sensor writes are checked where they arrive and committed later in shared batches
 * (lib/write-path/group-commit.ts): publishes that interleave a device's own records with records it may
 * not write must still have every forbidden one refused, and none of them stored.
 */
describe('a device interleaving allowed and forbidden publishes in a burst', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: every forbidden publish refused, every allowed one stored`, async () => {
      const name = `${run}-burst${protocolVersion}`;
      const device = await createUser(harper, 'device', name, { signs: [name] });
      const client = await connectMqtt(harper, { protocolVersion, credentials: device });
      const forbiddenSensor = `${run}-notmine${protocolVersion}`;
      const forbiddenSign = `${run}-notmysign${protocolVersion}`;
      const outcomes: Promise<string>[] = [];
      const publish = (topic: string, body: unknown) =>
        outcomes.push(
          client.publishAsync(topic, JSON.stringify(body), { qos: 1, retain: true }).then(
            (packet) => `${topic} PUBACK ${reasonCodeOf(packet)}`,
            // mqtt.js rejects a publish whose PUBACK carries an error reason code.
            (error: Error & { code?: number }) =>
              `${topic} ${error.code === undefined ? error.message : `PUBACK ${error.code}`}`,
          ),
        );
      try {
        for (let i = 0; i < 60; i++) {
          publish(`sensors/${name}`, { location: 'lab', temperature: i });
          publish(`sensors/${forbiddenSensor}`, { location: 'lab', temperature: i });
          publish(`sensors/${name}`, { location: 'lab', temperature: i + 0.5 });
          publish(`signs/${forbiddenSign}`, { message: `x${i}` });
          publish(`factory/${name}/status`, { i });
        }
        const answers = await Promise.all(outcomes);
        if (protocolVersion === 5) {
          const forbidden = answers.filter((a) => !a.startsWith(`sensors/${name} `));
          expect(forbidden).toHaveLength(180);
          expect(forbidden.filter((a) => !/PUBACK 1(28|35)$/.test(a))).toEqual([]);
          expect(answers.filter((a) => a.startsWith(`sensors/${name} `) && !a.endsWith('PUBACK 0'))).toEqual([]);
        }
      } finally {
        await client.endAsync();
      }
      expect((await rest(harper, 'GET', `/sensors/${forbiddenSensor}`)).status).toBe(404);
      expect((await rest(harper, 'GET', `/signs/${forbiddenSign}`)).status).toBe(404);
      expect((await rest(harper, 'GET', `/factory/${name}/status`)).status).toBe(404);
      expect((await rest<{ temperature: number }>(harper, 'GET', `/sensors/${name}`)).body.temperature).toBe(59.5);
      const history = await rest<unknown[]>(harper, 'GET', `/readings/?sensorId=${name}&select(id)&limit(1000)`);
      expect(history.body).toHaveLength(120);
    });
  }
});
