/**
 * The LED sign as a device twin. `signs/<id>` holds, in one record, what operators want the sign
 * to show (desired: the top-level message, brightness, power, color), what its device last
 * reported showing (`reported`), and the difference (`pending`). Who writes decides which side a
 * write changes, on every door (REST, MQTT, WebSocket, the per-field topics): a device user
 * reports, operators and the admin change desired. So the existing write bodies stay as they
 * were, and a device cannot overwrite what it was asked to show, nor an operator what the device
 * said it shows.
 *
 * `led-sign/<id>/<field>` is the LED-sign demo's per-field topic space, scalar payloads, for
 * devices that speak only it: its retained values are the desired state (a sign that reconnects
 * gets what it should show), and a device's publish there is a report.
 *
 *   PATCH /signs/2FE598 {"message":"Hi"}   (operator) -> desired; led-sign/2FE598/message "Hi" (retained)
 *   publish led-sign/2FE598/message "Hi"   (device)   -> reported.message "Hi"; pending empties
 *
 * No loop and no echo: desired changes are mirrored onto the per-field topics by writing their
 * base table directly (not through these classes), reports are not published there at all, and
 * a write that changes nothing is not stored again.
 */
import { tables } from 'harperdb';
import { roleOf } from '../access/policy.js';
import { guardedTable } from '../access/guarded-table.js';
import { monotonicNow } from '../write-path/server-time.js';
import { Refusal } from '../rules/errors.js';
import { LIMITS } from '../rules/limits.js';
import { MAX_ID_LENGTH } from '../../shared/records.js';
import {
  SIGN_FIELDS,
  checkSign,
  checkSignField,
  parseFieldTopic,
  pendingFields,
  scalarOf,
  type SignField,
  type SignRecord,
  type SignState,
} from '../rules/signs.js';
import {
  transaction,
  type HarperContext,
  type InstanceBoundTableClass,
  type RequestTarget,
  type User,
  userOf,
} from '../harper/types.js';
import { acceptTableWrites, type WriteAck } from '../streams/websocket-writes.js';

const SignsTable = tables.signs as unknown as InstanceBoundTableClass<SignRecord>;
const FieldsTable = tables.signFields as unknown as InstanceBoundTableClass<unknown>;

/** What an operator's first change starts from when the device has reported nothing yet. */
const DEFAULT_STATE: SignState = { message: '', brightness: 8, power: 'off', color: '#ff3b30' };

type Side = 'desired' | 'reported';

/** A device user reports what its sign shows; everyone else who may write changes what it should show. */
function sideOf(user: User | undefined): Side {
  return roleOf(user) === 'device' ? 'reported' : 'desired';
}

/** The desired state of a stored sign, once an operator has set it (all four fields). */
function desiredOf(stored: SignRecord | undefined): SignState | undefined {
  if (!stored || SIGN_FIELDS.some((field) => stored[field] === undefined)) return undefined;
  return { message: stored.message!, brightness: stored.brightness!, power: stored.power!, color: stored.color! };
}

function reportedOf(stored: SignRecord | undefined): Partial<SignState> | undefined {
  if (!stored?.reported) return undefined;
  const reported: Partial<SignState> = {};
  for (const field of SIGN_FIELDS)
    if (stored.reported[field] !== undefined) (reported as Record<SignField, unknown>)[field] = stored.reported[field];
  return reported;
}

/** A record from its parts; absent parts are left out, not stored as null. */
function signRecord(
  id: string,
  desired: SignState | undefined,
  desiredMeta: { at?: number; by?: string },
  reported: Partial<SignState> | undefined,
  reportedMeta: { at?: number; by?: string },
  shownAt: number | null,
): SignRecord {
  const record: SignRecord = { id, pending: desired ? pendingFields(desired, reported) : [], shownAt };
  if (desired) Object.assign(record, desired, { updatedAt: desiredMeta.at, updatedBy: desiredMeta.by });
  if (reported) Object.assign(record, { reported, reportedAt: reportedMeta.at, reportedBy: reportedMeta.by });
  return record;
}

interface TwinChange {
  record: SignRecord;
  /** Desired fields whose value changed: mirrored onto the per-field topics. */
  mirror: SignField[];
}

/**
 * The record after one write, or undefined when the write changes nothing (it is then not
 * stored: no event, no echo). `shownAt` is when a report first matched the latest desired state,
 * so the time a change took to be shown is shownAt - updatedAt.
 */
export function applyToTwin(
  id: string,
  stored: SignRecord | undefined,
  change: Partial<SignState>,
  side: Side,
  by: string,
  now: number,
): TwinChange | undefined {
  const desired = desiredOf(stored);
  const reported = reportedOf(stored);
  const desiredMeta = { at: stored?.updatedAt, by: stored?.updatedBy };
  const reportedMeta = { at: stored?.reportedAt, by: stored?.reportedBy };
  if (side === 'desired') {
    // The first change starts from what the sign shows, so it changes only what it names.
    const before: SignState = desired ?? { ...DEFAULT_STATE, ...reported };
    const after: SignState = { ...before, ...change };
    const mirror = SIGN_FIELDS.filter((field) => !desired || before[field] !== after[field]);
    if (mirror.length === 0) return undefined;
    const inSync = pendingFields(after, reported).length === 0;
    return { record: signRecord(id, after, { at: now, by }, reported, reportedMeta, inSync ? now : null), mirror };
  }
  const after: Partial<SignState> = { ...reported, ...change };
  if (reported && SIGN_FIELDS.every((field) => reported[field] === after[field])) return undefined;
  const inSync = desired !== undefined && pendingFields(desired, after).length === 0;
  const shownAt = inSync ? (stored?.shownAt ?? now) : null;
  return { record: signRecord(id, desired, desiredMeta, after, { at: now, by }, shownAt), mirror: [] };
}

/**
 * A per-field value as Harper keeps non-JSON payloads: bytes with a content type, delivered to
 * MQTT subscribers as the bare scalar ("Hello", "7", "on"). A plain string record fails Harper's
 * commit-time validation.
 */
function scalarRecord(value: SignState[SignField]): { contentType: string; data: Buffer } {
  return { contentType: 'text/plain', data: Buffer.from(String(value)) };
}

/**
 * One write to a sign's twin: reads the stored record, stores the next one and mirrors desired
 * changes onto the per-field topics, in one transaction of its own that has committed when this
 * resolves. Returns the stored record, or the unchanged one.
 */
async function writeTwinNow(
  id: string,
  change: Partial<SignState>,
  user: User | undefined,
): Promise<SignRecord | undefined> {
  const context: HarperContext = { user };
  return transaction(context, async () => {
    const stored = await SignsTable.get(id, context);
    const next = applyToTwin(id, stored, change, sideOf(user), user?.username ?? 'server', monotonicNow());
    if (!next) return stored;
    await SignsTable.put(next.record, context);
    for (const field of next.mirror)
      await FieldsTable.put(`${id}/${field}`, scalarRecord(next.record[field] as SignState[SignField]), context);
    return next.record;
  });
}

/** Each sign's last write on this thread, while it has not committed: the next one waits for it. */
const writing = new Map<string, Promise<unknown>>();

/**
 * Writes to one sign, one after the other on every door. Each write reads the record and writes
 * it back, and Harper does not commit two transactions on one record in the order they began (of
 * two, the one with the older commit timestamp is dropped): a device reporting its four fields
 * at once lost all but one. Waiting for the previous write's commit keeps every change. The map
 * holds only signs with a write in progress.
 */
function writeTwin(id: string, change: Partial<SignState>, user: User | undefined): Promise<SignRecord | undefined> {
  const write = () => writeTwinNow(id, change, user);
  const previous = writing.get(id);
  const result = previous ? previous.then(write, write) : write();
  const settled = result.then(
    () => undefined,
    () => undefined,
  );
  writing.set(id, settled);
  void settled.then(() => writing.get(id) === settled && writing.delete(id));
  return result;
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
  const sign =
    slash > 0 && (SIGN_FIELDS as readonly string[]).includes(last) ? text.slice(0, slash) : text.replace(/\/+$/, '');
  return sign === '' ? null : sign;
}

export class Signs extends guardedTable(SignsTable, { resource: 'signs', maxIdLength: MAX_ID_LENGTH }) {
  /** PUT (and retained MQTT): the whole state, desired or reported by who sends it. */
  async put(data: unknown) {
    return this.write(checkSign(this.getId(), data, true));
  }

  /** PATCH (the dashboard's controls, a device's report): the fields that change. */
  async patch(data: unknown) {
    return this.write(checkSign(this.getId(), data, false));
  }

  publish(): never {
    throw new Refusal({
      error: 'not_stored',
      message: 'a sign is stored state: PUT or PATCH it, or publish with retain',
    });
  }

  private async write({ id, ...change }: Partial<SignState> & { id: string }): Promise<void> {
    await writeTwin(id, change, userOf(this));
  }

  /**
   * WebSocket: besides the sign's events, a client may send changes (like a PATCH body) on the
   * sign's socket, or with an id on the table's socket; each is checked, authorised, written with
   * its per-field mirror in one transaction, and answered with an ack (the time of the side it
   * changed) or an error.
   */
  connect(incoming: unknown, target?: RequestTarget) {
    const outgoing = super.connect(incoming, target);
    if (!incoming) return outgoing; // SSE
    return acceptTableWrites(this, outgoing, incoming, {
      resource: 'signs',
      check: (id, message) => checkSign(id, message, false),
      // Writes to one sign are ordered by writeTwin, from the moment they are handed to it.
      place: ({ id, ...change }, user) => ({
        store: async (): Promise<WriteAck> => {
          const record = await writeTwin(id, change, user);
          const at = sideOf(user) === 'reported' ? record?.reportedAt : record?.updatedAt;
          return { type: 'ack', id, updatedAt: at ?? monotonicNow() };
        },
        cancel: () => undefined,
      }),
    });
  }
}

/**
 * `led-sign/<id>/<field>`: the per-field topics. A publish (retained or not) or REST PUT of a
 * scalar is checked and applied to signs/<id> on the writer's side. A desired change is stored as
 * the field's retained value (also when it was published without retain: a sign that is offline
 * must find it when it reconnects) and fanned out once, by the mirror. A device's report is not
 * stored or fanned out on the topic: its subscribers are signs waiting to be told what to show,
 * and the retained value stays what they should show; the report streams on signs/<id>.
 */
// Rights follow the sign a topic belongs to: a device may use its own sign's fields.
export class LedSign extends guardedTable(FieldsTable, {
  resource: 'signs',
  name: 'led-sign',
  maxIdLength: LIMITS.maxTopicLength,
  recordOf: signOf,
}) {
  async put(data: unknown) {
    await this.apply(data);
  }

  async publish(message: unknown) {
    await this.apply(message);
  }

  private async apply(payload: unknown): Promise<void> {
    const { signId, field } = parseFieldTopic(this.getId());
    const value = checkSignField(field, scalarOf(payload));
    await writeTwin(signId, { [field]: value }, userOf(this));
  }
}
