/**
 * The `sensors` resource: the latest state of every sensor, written by devices and UIs over any
 * protocol and fanned out to every subscriber by Harper itself.
 *
 * Written in Harper's default ("instance-binding", `loadAsInstance` left at its default) style on
 * purpose: in Harper 4.7 the newer style (`static loadAsInstance = false`) skips the read-permission
 * check on subscriptions and loses record-level replay, while this style keeps both. Its instance
 * methods therefore take `(data, target)`, and `this.getId()` is the id from the topic or path.
 *
 * Every stored write, whatever its protocol, goes through `beforeState()` (its reading in the
 * history, the alert rules, the rolling statistics) and then writes the state, queued per sensor.
 */
import { tables } from 'harperdb';
import { deniedMessage, may } from './access.js';
import { guardedTable } from './guarded-table.js';
import { evaluateRules } from './alerts.js';
import { monotonicNow } from './clock.js';
import { forbidden } from './errors.js';
import { appendReading } from './history.js';
import { writeInTurn, writeKey } from './serial.js';
import { MAX_ID_LENGTH, checkPatch, checkReading, type SensorRecord } from './sensor-rules.js';
import { updateStats } from './stats.js';
import { acceptWebSocketWrites, type WriteAck } from './websocket-writes.js';
import { transaction, type HarperContext, type InstanceBoundTableClass, type RequestTarget, type User } from './harper-types.js';

const SensorsTable = tables.sensors as unknown as InstanceBoundTableClass<SensorRecord>;

/**
 * What every stored state change needs before the state itself is written: its reading and its
 * alerts, committed in a transaction of their own, and its statistics (folded in memory, written
 * once a second: lib/stats.ts). The state write that follows commits before the write is
 * acknowledged, so an acknowledged write has both.
 *
 * Why not one transaction with the state: a node of a cluster catching up after a restart did not
 * receive every reading that had been committed together with an update of its sensor (3 of 50
 * missing, 97 of 100 in another run; sensor state itself converged), while readings committed in
 * their own transactions all arrived. The order keeps history ahead of state: a subscriber that
 * sees a state change can always find its reading. A crash between the two commits leaves a
 * reading whose write was not acknowledged (a QoS 1 client sends it again).
 */
async function beforeState(record: SensorRecord, user: User | undefined): Promise<void> {
  const context: HarperContext = { user };
  await transaction(context, async () => {
    await appendReading(record, context);
    await evaluateRules(record, context);
  });
  updateStats(record);
}

const userOf = (resource: { getContext(): unknown }) => (resource.getContext() as HarperContext | undefined)?.user;

/**
 * Stores a checked reading written by our own code (REST POST on the collection, WebSocket), in
 * its sensor's write queue like every REST/MQTT write, with its history, alerts and statistics.
 */
function storeQueued(record: SensorRecord, user: User | undefined): Promise<void> {
  return writeInTurn(record.id, { user }, async (context) => {
    await beforeState(record, user);
    await SensorsTable.put(record, context);
  });
}

/** The complete record after a PATCH: the current state with the patch applied. */
function merged(current: Partial<SensorRecord> | undefined, patch: Partial<SensorRecord>, id: string): SensorRecord {
  const base: Partial<SensorRecord> = {};
  for (const field of ['location', 'temperature', 'humidity', 'battery', 'time'] as const) {
    if (current?.[field] !== undefined) (base as Record<string, unknown>)[field] = current[field];
  }
  return { ...base, ...patch, id } as SensorRecord;
}

export class Sensors extends guardedTable(SensorsTable, { resource: 'sensors', maxIdLength: MAX_ID_LENGTH }) {
  /**
   * REST and MQTT call these as (target, data, context). Writes of one sensor are queued, each in
   * a transaction of its own that commits before the next starts (see lib/serial.ts).
   */
  static put(...args: unknown[]) {
    if (args.length !== 3) return super.put(...args);
    const [target, data, caller] = args;
    return writeInTurn(writeKey(target), caller as HarperContext, (context) => super.put(target, data, context));
  }

  static patch(...args: unknown[]) {
    if (args.length !== 3) return super.patch(...args);
    const [target, data, caller] = args;
    return writeInTurn(writeKey(target), caller as HarperContext, (context) => super.patch(target, data, context));
  }

  /** REST PUT and MQTT publish with retain: replace the sensor's state. */
  async put(data: unknown, target?: RequestTarget) {
    const record = checkReading(this.getId(), data, monotonicNow());
    await beforeState(record, userOf(this));
    await super.put(record, target);
  }

  /** REST PATCH: merge into the current state; the result must still be a complete reading. */
  async patch(data: unknown, target?: RequestTarget) {
    const id = String(this.getId());
    const current = await SensorsTable.get(id, this);
    const patch = checkPatch(id, data, current, monotonicNow());
    await beforeState(merged(current, patch, id), userOf(this));
    await super.patch(patch, target);
  }

  /** MQTT publish without retain: validated like a stored reading, fanned out, not stored. */
  publish(message: unknown, target?: RequestTarget) {
    return super.publish(checkReading(this.getId(), message, monotonicNow()), target);
  }

  /**
   * REST POST. On the collection (`POST /sensors/`) the id comes from the body and the reading is
   * stored under it, answering 201 with its Location; POST to a record is not a meaningful action.
   */
  async post(data: unknown, _target?: RequestTarget) {
    if (this.getId() != null) {
      return { status: 405, headers: { Allow: 'GET, PUT, PATCH, DELETE' }, data: { error: 'method_not_allowed', message: 'POST to the collection (/sensors/) with the id in the body, or PUT to /sensors/<id>' } };
    }
    const body = data !== null && typeof data === 'object' ? (data as { id?: unknown }) : {};
    const record = checkReading(body.id, data, monotonicNow());
    await storeQueued(record, userOf(this));
    return { status: 201, headers: { Location: `/sensors/${record.id}` }, data: record };
  }

  /**
   * WebSocket: Harper subscribes the socket to this record (or table) and, by default, drops what
   * the client sends. Here each message is a reading for this sensor (or, on the table's socket,
   * for the sensor its id names), checked by the same rules as every other write, stored with its
   * history, and acknowledged once committed (or answered with an error).
   */
  connect(incoming: unknown, target?: RequestTarget) {
    const outgoing = super.connect(incoming, target);
    if (!incoming) return outgoing; // SSE: no messages come from the client
    const pathId = this.getId();
    const user = (this.getContext() as HarperContext | undefined)?.user;
    return acceptWebSocketWrites(outgoing, incoming, async (message): Promise<WriteAck> => {
      const id = pathId ?? (message !== null && typeof message === 'object' ? (message as { id?: unknown }).id : undefined);
      const record = checkReading(id, message, monotonicNow());
      // Written straight to the table (the record is already checked), so ask the same question
      // Harper asks for every other protocol's write.
      if (!(await may(user, 'sensors', 'write', record.id))) throw forbidden(deniedMessage(user, 'write', `sensors "${record.id}"`));
      await storeQueued(record, user);
      return { type: 'ack', id: record.id, updatedAt: record.updatedAt };
    });
  }
}
