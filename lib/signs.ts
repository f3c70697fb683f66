/**
 * The LED sign: `signs/<id>` holds a sign's state (message, brightness, power, color), written by
 * operators from the dashboard (REST) and reported by the sign device itself; and `led-sign/<id>/
 * <field>` is the LED-sign demo's per-field topic space, scalar payloads, kept in step with it:
 *
 *   PATCH /signs/2FE598 {"message":"Hi"}          -> led-sign/2FE598/message  "Hi"   (to per-field devices)
 *   publish led-sign/2FE598/brightness "7"          -> signs/2FE598 brightness 7         (to the dashboard)
 *
 * No loop and no echo storm: each side writes the other's base table directly (not through these
 * classes), so a mirrored change is never mirrored back, and a field that already has the value
 * is not written again.
 */
import { tables } from 'harperdb';
import { deniedMessage, may } from './access.js';
import { guardedTable } from './guarded-table.js';
import { monotonicNow } from './clock.js';
import { Refusal, forbidden } from './errors.js';
import { LIMITS } from './limits.js';
import { MAX_ID_LENGTH } from './sensor-rules.js';
import { SIGN_FIELDS, checkSign, checkSignField, parseFieldTopic, scalarOf, type SignField, type SignRecord, type SignState } from './sign-rules.js';
import { transaction, type HarperContext, type InstanceBoundTableClass, type RequestTarget } from './harper-types.js';
import { acceptWebSocketWrites, type WriteAck } from './websocket-writes.js';

const SignsTable = tables.signs as unknown as InstanceBoundTableClass<SignRecord>;
const FieldsTable = tables.signFields as unknown as InstanceBoundTableClass<unknown>;

/** A fresh sign starts dark and blank until someone sets it. */
const DEFAULT_STATE: SignState = { message: '', brightness: 8, power: 'off', color: '#ff3b30' };

function userOf(resource: { getContext(): unknown }): string {
  return ((resource.getContext() as HarperContext | undefined)?.user?.username as string | undefined) ?? 'server';
}

function currentState(stored: Partial<SignRecord> | undefined): SignState {
  return {
    message: stored?.message ?? DEFAULT_STATE.message,
    brightness: stored?.brightness ?? DEFAULT_STATE.brightness,
    power: stored?.power ?? DEFAULT_STATE.power,
    color: stored?.color ?? DEFAULT_STATE.color,
  };
}

/**
 * A per-field value as Harper keeps non-JSON payloads: bytes with a content type, delivered to
 * MQTT subscribers as the bare scalar ("Hello", "7", "on"). A plain string record fails Harper's
 * commit-time validation.
 */
function scalarRecord(value: SignState[SignField]): { contentType: string; data: Buffer } {
  return { contentType: 'text/plain', data: Buffer.from(String(value)) };
}

/** Mirrors the changed fields of a sign onto its per-field topics, in the same transaction. */
async function mirrorToFields(id: string, before: SignState, after: SignState, context: unknown): Promise<void> {
  for (const field of SIGN_FIELDS) {
    if (before[field] !== after[field]) await FieldsTable.put(`${id}/${field}`, scalarRecord(after[field]), context);
  }
}

/**
 * The sign a led-sign record id or collection belongs to, as parseFieldTopic reads a field's
 * topic: everything before the last `/` when the last level is a field name ("X/Y/message" is sign
 * "X/Y", not "X": a device X may not write sign X/Y), else the whole id without its trailing `/`
 * (a collection or wildcard, "2FE598/" -> "2FE598").
 */
function signOf(rawId: unknown): string | null {
  if (rawId == null || rawId === '') return null;
  const text = Array.isArray(rawId) ? rawId.filter((part) => part != null).join('/') : String(rawId);
  const slash = text.lastIndexOf('/');
  const last = text.slice(slash + 1);
  const sign = slash > 0 && (SIGN_FIELDS as readonly string[]).includes(last) ? text.slice(0, slash) : text.replace(/\/+$/, '');
  return sign === '' ? null : sign;
}

export class Signs extends guardedTable(SignsTable, { resource: 'signs', maxIdLength: MAX_ID_LENGTH }) {
  /** PUT (and retained MQTT): the whole state. */
  async put(data: unknown, target?: RequestTarget) {
    return this.write(checkSign(this.getId(), data, true), target);
  }

  /** PATCH (the dashboard's controls): the fields that change. */
  async patch(data: unknown, target?: RequestTarget) {
    return this.write(checkSign(this.getId(), data, false), target);
  }

  publish(): never {
    throw new Refusal({ error: 'not_stored', message: 'a sign is stored state: PUT or PATCH it, or publish with retain' });
  }

  private async write(change: Partial<SignState> & { id: string }, target?: RequestTarget): Promise<void> {
    const before = currentState(await SignsTable.get(change.id, this));
    const after: SignState = { ...before, ...change };
    const record: SignRecord = { ...after, id: change.id, updatedAt: monotonicNow(), updatedBy: userOf(this) };
    await super.put(record, target);
    await mirrorToFields(change.id, before, after, this);
  }

  /**
   * WebSocket: besides the sign's events, a client may send changes (like a PATCH body) on the
   * sign's socket, or with an id on the table's socket; each is checked, authorised, written with
   * its per-field mirror in one transaction, and answered with an ack or an error.
   */
  connect(incoming: unknown, target?: RequestTarget) {
    const outgoing = super.connect(incoming, target);
    if (!incoming) return outgoing; // SSE
    const pathId = this.getId();
    const user = (this.getContext() as HarperContext | undefined)?.user;
    return acceptWebSocketWrites(outgoing, incoming, async (message): Promise<WriteAck> => {
      const id = pathId ?? (message !== null && typeof message === 'object' ? (message as { id?: unknown }).id : undefined);
      const change = checkSign(id, message, false);
      if (!(await may(user, 'signs', 'write', change.id))) throw forbidden(deniedMessage(user, 'write', `signs "${change.id}"`));
      const context: HarperContext = { user };
      const record = await transaction(context, async () => {
        const before = currentState(await SignsTable.get(change.id, context));
        const after: SignState = { ...before, ...change };
        const written: SignRecord = { ...after, id: change.id, updatedAt: monotonicNow(), updatedBy: user?.username ?? 'server' };
        await SignsTable.put(written, context);
        await mirrorToFields(change.id, before, after, context);
        return written;
      });
      return { type: 'ack', id: record.id, updatedAt: record.updatedAt };
    });
  }
}

/**
 * `led-sign/<id>/<field>`: the per-field topics. A retained or plain publish (or REST PUT) of a
 * scalar is checked, kept as the field's retained value, fanned out, and applied to signs/<id>.
 */
// Rights follow the sign a topic belongs to: a device may use its own sign's fields.
export class LedSign extends guardedTable(FieldsTable, { resource: 'signs', name: 'led-sign', maxIdLength: LIMITS.maxTopicLength, recordOf: signOf }) {
  async put(data: unknown, target?: RequestTarget) {
    const { signId, field, value } = this.parse(data);
    await super.put(scalarRecord(value), target);
    await this.apply(signId, field, value);
  }

  async publish(message: unknown, target?: RequestTarget) {
    const { signId, field, value } = this.parse(message);
    await super.publish(scalarRecord(value), target);
    await this.apply(signId, field, value);
  }

  private parse(payload: unknown): { signId: string; field: SignField; value: SignState[SignField] } {
    const { signId, field } = parseFieldTopic(this.getId());
    return { signId, field, value: checkSignField(field, scalarOf(payload)) };
  }

  /** A per-field report changes the sign (only if it differs: no echo of a mirrored value). */
  private async apply(signId: string, field: SignField, value: SignState[SignField]): Promise<void> {
    const stored = await SignsTable.get(signId, this);
    const before = currentState(stored);
    if (stored && before[field] === value) return;
    const record: SignRecord = { ...before, [field]: value, id: signId, updatedAt: monotonicNow(), updatedBy: userOf(this) };
    await SignsTable.put(record, this);
  }
}
