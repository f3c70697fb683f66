/**
 * The `sensors` resource: the latest state of every sensor, written by devices and UIs over any
 * protocol and fanned out to every subscriber by Harper itself.
 *
 * Written in Harper's default ("instance-binding", `loadAsInstance` left at its default) style on
 * purpose: in Harper 4.7 the newer style (`static loadAsInstance = false`) skips the read-permission
 * check on subscriptions and loses record-level replay, while this style keeps both. Its instance
 * methods therefore take `(data, target)`, and `this.getId()` is the id from the topic or path.
 */
import { tables } from 'harperdb';
import { forbidden } from './errors.js';
import { checkPathLength, checkRequestBody } from './limits.js';
import { deniedMessage, maySensor, type Action } from './access.js';
import type { HarperContext, InstanceBoundTableClass, RequestTarget, User } from './harper-types.js';
import { MAX_ID_LENGTH, checkPatch, checkReading, type SensorRecord } from './sensor-rules.js';
import { acceptWebSocketWrites, type WriteAck } from './websocket-writes.js';

type Body = unknown;

const SensorsTable = tables.sensors as unknown as InstanceBoundTableClass<SensorRecord>;

export class Sensors extends SensorsTable {
  static parsePath(path: unknown, ...rest: unknown[]) {
    checkPathLength(path, MAX_ID_LENGTH);
    return super.parsePath(path, ...rest);
  }

  static put(...args: unknown[]) {
    return super.put(...checkRequestBody(args));
  }

  static patch(...args: unknown[]) {
    return super.patch(...checkRequestBody(args));
  }

  static post(...args: unknown[]) {
    return super.post(...checkRequestBody(args));
  }

  /*
   * Harper calls these before every read, subscription (SSE, WebSocket, MQTT, incl. wildcards and
   * replay), write and delete that arrives over a protocol; the decisions are in lib/access.ts.
   * Roles we do not define fall back to Harper's table permissions (super.allowX).
   */
  allowRead(user: User | undefined, target?: RequestTarget) {
    return this.decide(user, 'read', () => super.allowRead(user, target));
  }

  allowCreate(user: User | undefined, data: unknown, target?: RequestTarget) {
    return this.decide(user, 'write', () => super.allowCreate(user, data, target));
  }

  allowUpdate(user: User | undefined, data: unknown, target?: RequestTarget) {
    return this.decide(user, 'write', () => super.allowUpdate(user, data, target));
  }

  allowDelete(user: User | undefined, target?: RequestTarget) {
    return this.decide(user, 'delete', () => super.allowDelete(user, target));
  }

  /**
   * An authenticated user without the right gets our `forbidden` refusal (a JSON 403, MQTT 5
   * code 135 on SUBACK); an anonymous one gets `false`, which Harper answers with its 401 and
   * `WWW-Authenticate` challenge (MQTT refuses anonymous CONNECTs before any of this).
   */
  private async decide(user: User | undefined, action: Action, fallback: () => unknown): Promise<boolean> {
    const id = this.getId();
    const recordId = id == null || id === '' ? null : String(id);
    const allowed = (await maySensor(user, action, recordId)) ?? Boolean(await fallback());
    if (!allowed && user) throw forbidden(deniedMessage(user, action, recordId === null ? 'all sensors' : `sensor "${recordId}"`));
    return allowed;
  }

  /** REST PUT and MQTT publish with retain: replace the sensor's state. */
  put(data: Body, target?: RequestTarget) {
    return super.put(checkReading(this.getId(), data), target);
  }

  /** REST PATCH: merge into the current state; the result must still be a complete reading. */
  async patch(data: Body, target?: RequestTarget) {
    const current = await SensorsTable.get(String(this.getId()));
    return super.patch(checkPatch(this.getId(), data, current), target);
  }

  /** MQTT publish without retain: validated like a stored reading, fanned out, not stored. */
  publish(message: Body, target?: RequestTarget) {
    return super.publish(checkReading(this.getId(), message), target);
  }

  /**
   * REST POST. On the collection (`POST /sensors/`) the id comes from the body and the reading is
   * stored under it, answering 201 with its Location; POST to a record is not a meaningful action.
   */
  async post(data: Body, _target?: RequestTarget) {
    const id = this.getId();
    if (id != null) {
      return { status: 405, headers: { Allow: 'GET, PUT, PATCH, DELETE' }, data: { error: 'method_not_allowed', message: 'POST to the collection (/sensors/) with the id in the body, or PUT to /sensors/<id>' } };
    }
    const body = data !== null && typeof data === 'object' ? (data as { id?: unknown }) : {};
    const record = checkReading(body.id, data);
    await SensorsTable.put(record, this);
    return { status: 201, headers: { Location: `/sensors/${record.id}` }, data: record };
  }

  /**
   * WebSocket: Harper subscribes the socket to this record (or table) and, by default, drops what
   * the client sends. Here each message is a reading for this sensor (or, on the table's socket,
   * for the sensor its id names), checked by the same rules as every other write, stored, and
   * answered with an ack or an error on the same socket.
   */
  connect(incoming: unknown, target?: RequestTarget) {
    const outgoing = super.connect(incoming, target);
    if (!incoming) return outgoing; // SSE: no messages come from the client
    const pathId = this.getId();
    const context: HarperContext | undefined = this.getContext();
    return acceptWebSocketWrites(outgoing, incoming, async (message): Promise<WriteAck> => {
      const id = pathId ?? (message !== null && typeof message === 'object' ? (message as { id?: unknown }).id : undefined);
      const record = checkReading(id, message);
      // Written straight to the table (the record is already checked), so ask the same question
      // Harper asks for every other protocol's write.
      if (!(await maySensor(context?.user, 'write', record.id))) throw forbidden(deniedMessage(context?.user, 'write', `sensor "${record.id}"`));
      await SensorsTable.put(record, { user: context?.user });
      return { type: 'ack', id: record.id, updatedAt: record.updatedAt };
    });
  }
}
