/**
 * The `sensors` resource: the latest state of every sensor, written by devices and UIs over any
 * protocol and fanned out to every subscriber by Harper itself.
 *
 * Written in Harper's default ("instance-binding", `loadAsInstance` left at its default) style on
 * purpose: in Harper 4.7 the newer style (`static loadAsInstance = false`) skips the read-permission
 * check on subscriptions and loses record-level replay, while this style keeps both. Its instance
 * methods therefore take `(data, target)`, and `this.getId()` is the id from the topic or path.
 *
 * Every stored write, whatever its protocol, is checked here and then committed by the thread's
 * group commit (lib/write-path/group-commit.ts) together with the other writes of the same turn: its reading
 * and alerts, then the new state, acknowledged once both have committed. Its rollups (and so its
 * statistics) are folded in memory after the commit (lib/resources/rollups.ts).
 */
import { tables } from 'harperdb';
import { authorize, decidedNow, roleOf } from '../access/policy.js';
import { evaluateRules } from './alerts.js';
import { noRulesFor } from '../write-path/rule-cache.js';
import { bounded } from '../write-path/publisher-backpressure.js';
import { monotonicNow } from '../write-path/server-time.js';
import { GroupCommit, type Reservation } from '../write-path/group-commit.js';
import { guardedTable } from '../access/guarded-table.js';
import { directWriter } from '../harper/direct-writer.js';
import { inOneWrite } from '../harper/lmdb-batch.js';
import { appendReading } from './readings.js';
import { checkRequestBody } from '../rules/limits.js';
import { observeCommit, sampleQueueDepth } from '../metrics/counters.js';
import { MAX_ID_LENGTH, checkPatch, checkReading, type SensorRecord } from '../rules/sensors.js';
import { foldReading } from './rollups.js';
import { acceptTableWrites, type WriteAck } from '../streams/websocket-writes.js';
import { isThenable, type HarperContext, type InstanceBoundTableClass, type RequestTarget } from '../harper/types.js';

const SensorsTable = tables.sensors as unknown as InstanceBoundTableClass<SensorRecord>;

/**
 * What one accepted write stores, in two transactions per batch: its reading and the alerts it
 * causes, then the state. Harper is handed both once both are written, the second right after
 * the first (inside one lmdb-js batch where Harper allows it: lib/harper/lmdb-batch.ts), so LMDB
 * commits them in one write, and the write is acknowledged once both have committed. (The
 * reading's transaction cannot fail on a conflict: its records are new and their ids unique.)
 *
 * Why not one transaction: a node of a cluster did not receive every reading that had been
 * committed in one transaction with a sensor's state (live and catching up after a restart; the
 * state itself converged), while readings committed in transactions of their own all arrived
 * (test/cluster.test.ts). Many sensors' readings in one transaction replicate fine.
 */
function storeHistory(record: SensorRecord, context: HarperContext): unknown {
  const appended = appendReading(record, context);
  if (noRulesFor(record.id)) return appended;
  return Promise.resolve(appended).then(() => evaluateRules(record, context));
}

const sensorsWriter = directWriter<SensorRecord>(tables.sensors);

function storeState(record: SensorRecord, context: HarperContext): unknown {
  return sensorsWriter.put(record.id, record, context);
}

const writes = new GroupCommit<SensorRecord>(
  [storeHistory, storeState],
  foldReading,
  undefined,
  inOneWrite(tables.sensors),
);
// Figures for /metrics (lib/metrics/counters.ts): once per batch, and once a second; nothing per write.
writes.onBatch = observeCommit;
sampleQueueDepth(() => writes.takeDeepestQueue());

/**
 * The server's time for a write is taken when its batch is prepared, in its sensor's order, so
 * readings of one sensor have strictly increasing times in the order they were committed.
 */
const stamped = (record: SensorRecord) => () => {
  record.updatedAt = monotonicNow(); // the write's own record, fresh from the checks
  return record;
};

/**
 * REST and MQTT writes reach the instance method only after Harper has loaded the record and
 * checked the caller's rights, which takes different times for different writes. The static
 * method takes the write's place in its sensor's order first and leaves it on the request's
 * context (Harper creates one per request and per MQTT publish) for the instance method to fill.
 */
const SLOT = Symbol('sensor write slot');
type SlotContext = HarperContext & { [SLOT]?: Reservation<SensorRecord> };

function inArrivalOrder<T>(target: unknown, caller: unknown, call: () => Promise<T>): Promise<T> {
  const context = caller as SlotContext | undefined;
  // A context already carrying a slot is shared by concurrent calls: order those at the instance.
  if (!context || context[SLOT]) return call();
  const slot = writes.reserve(writeKey(target));
  context[SLOT] = slot;
  const result = bounded(context, Promise.resolve().then(call));
  const settled = () => {
    slot.cancel(); // no-op once the write was handed to the group commit
    if (context[SLOT] === slot) delete context[SLOT];
  };
  result.then(settled, settled);
  return result;
}

/** The slot the static method reserved for this write, or a new one. */
function slotOf(resource: { getContext(): unknown }, id: string): Reservation<SensorRecord> {
  const context = resource.getContext() as SlotContext | undefined;
  const slot = context?.[SLOT];
  if (slot && slot.key === id && !slot.filled) {
    delete context![SLOT];
    return slot;
  }
  return writes.reserve(id);
}

/**
 * The record a REST/MQTT write targets, as an order key: its id. Harper hands over a target whose
 * id is not parsed yet (MQTT: the topic below the resource as a path, "/101"); both give "101".
 */
function writeKey(target: unknown): string {
  if (target === null || target === undefined) return '';
  if (typeof target !== 'object') return String(target);
  const { id, pathname, url } = target as { id?: unknown; pathname?: unknown; url?: unknown };
  if (id !== undefined && id !== null) return String(id);
  const path = String(pathname ?? url ?? '');
  const query = path.indexOf('?');
  return (query < 0 ? path : path.slice(0, query)).replace(/^\//, '');
}

/**
 * A target that names one sensor plainly (`/101`, `/site-a/101`: no query, no percent-encoding, no
 * `.json`-style suffix), as REST and MQTT hand it over; anything else takes Harper's own parsing.
 */
const PLAIN_ID = /^\/([A-Za-z0-9_:-]+(?:\/[A-Za-z0-9_:-]+)*)$/;
function plainId(target: unknown): string | undefined {
  const { pathname, search } = (target ?? {}) as { pathname?: unknown; search?: unknown };
  if (typeof pathname !== 'string' || search) return undefined;
  return PLAIN_ID.exec(pathname)?.[1];
}

/**
 * The sensor a write or publish names, when it can skip Harper's generic path: a signed-in user of
 * one of our roles and a plainly named sensor. That path loads the sensor's record before calling
 * the resource, only to choose between its "create" and "update" permission checks, which our
 * policy answers alike ("write"); a replacing write and a publish have no other use for it.
 * Anonymous callers, roles we do not define and unusual targets take Harper's path.
 */
function fastPathId(target: unknown, context: SlotContext): string | undefined {
  const id = plainId(target);
  return id !== undefined && roleOf(context.user) !== undefined ? id : undefined;
}

/** The replacing write (REST PUT, retained MQTT publish) on the fast path (`fastPathId`). */
function replaceFast(target: unknown, data: unknown, context: SlotContext): Promise<unknown> | undefined {
  const user = context.user;
  const id = fastPathId(target, context);
  if (id === undefined) return undefined;
  const slot = writes.reserve(id);
  const check = context.authorize;
  context.authorize = false; // as Harper does once it has checked a request
  const allowed = check ? decidedNow(user, 'sensors', 'write', id) : true;
  if (allowed === true && !isThenable(data)) {
    // The common case (MQTT, a decided right): no promise of our own before the group commit's.
    let record: SensorRecord;
    try {
      record = checkReading(id, data);
    } catch (error) {
      slot.cancel();
      return Promise.reject(error);
    }
    return bounded(context, slot.commit(stamped(record)));
  }
  const write = (async () => {
    try {
      if (allowed !== true) await authorize(user, 'sensors', 'write', id, () => false);
      await slot.commit(stamped(checkReading(id, await data)));
    } finally {
      slot.cancel(); // no-op once the write was handed to the group commit
    }
  })();
  return bounded(context, write);
}

/** The non-retained MQTT publish on the fast path (`fastPathId`) when its right is decided now. */
function publishableNow(target: unknown, message: unknown, context: SlotContext): string | undefined {
  const id = fastPathId(target, context);
  if (id === undefined || isThenable(message)) return undefined;
  if (context.authorize && decidedNow(context.user, 'sensors', 'write', id) !== true) return undefined;
  return id;
}

/** Checks the message by the same rules as every reading and fans it out in the publish's transaction. */
function publishChecked(id: string, message: unknown, context: SlotContext): unknown {
  context.authorize = false; // decided, as Harper does once it has checked a request
  try {
    return sensorsWriter.publish(id, checkReading(id, message, monotonicNow()), context);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Stores a checked reading written by our own code (REST POST on the collection, WebSocket). */
function storeChecked(record: SensorRecord): Promise<SensorRecord> {
  return writes.reserve(record.id).commit(stamped(record));
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
  /** REST and MQTT call these as (target, data, context). */
  static put(...args: unknown[]) {
    if (args.length !== 3) return super.put(...args);
    const [target, data, caller] = checkRequestBody(args);
    return (
      replaceFast(target, data, caller as SlotContext) ??
      inArrivalOrder(target, caller, () => super.put(target, data, caller))
    );
  }

  /** MQTT publish without retain, called as (target, message, context). */
  static publish(...args: unknown[]) {
    if (args.length !== 3) return super.publish(...args);
    const [target, message, caller] = args;
    const id = publishableNow(target, message, caller as SlotContext);
    return id === undefined
      ? super.publish(target, message, caller)
      : publishChecked(id, message, caller as SlotContext);
  }

  static patch(...args: unknown[]) {
    if (args.length !== 3) return super.patch(...args);
    const [target, data, caller] = args;
    return inArrivalOrder(target, caller, () => super.patch(target, data, caller));
  }

  /** REST PUT and MQTT publish with retain: replace the sensor's state. */
  async put(data: unknown, _target?: RequestTarget) {
    const record = checkReading(this.getId(), data);
    await slotOf(this, record.id).commit(stamped(record));
  }

  /**
   * REST PATCH: merged into the state as it is when the write's turn comes (after every earlier
   * write of the sensor has committed); the result must still be a complete reading. Stored as
   * the whole merged record, so every subscriber event carries the complete state.
   */
  async patch(data: unknown, _target?: RequestTarget) {
    const id = String(this.getId());
    await slotOf(this, id).commit(
      async (context) => {
        const current = await SensorsTable.get(id, context);
        return merged(current, checkPatch(id, data, current, monotonicNow()), id);
      },
      { readsCurrent: true },
    );
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
      return {
        status: 405,
        headers: { Allow: 'GET, PUT, PATCH, DELETE' },
        data: {
          error: 'method_not_allowed',
          message: 'POST to the collection (/sensors/) with the id in the body, or PUT to /sensors/<id>',
        },
      };
    }
    const body = data !== null && typeof data === 'object' ? (data as { id?: unknown }).id : undefined;
    const stored = await storeChecked(checkReading(body, data));
    return { status: 201, headers: { Location: `/sensors/${stored.id}` }, data: stored };
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
    return acceptTableWrites(this, outgoing, incoming, {
      resource: 'sensors',
      check: checkReading,
      place: (record) => {
        const slot = writes.reserve(record.id); // its place in the sensor's order: now, as it arrived
        return {
          store: async (): Promise<WriteAck> => {
            const stored = await slot.commit(stamped(record));
            return { type: 'ack', id: stored.id, updatedAt: stored.updatedAt };
          },
          cancel: () => slot.cancel(),
        };
      },
      concurrent: true,
    });
  }
}
