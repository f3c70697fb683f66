/**
 * The rules of the `sensors` table: what a reading is, and what the backbone refuses.
 *
 * These checks run in the write path of every protocol (REST PUT/PATCH/POST, MQTT publish with and
 * without retain, WebSocket messages), before anything is stored or fanned out, so a refused
 * reading is never seen by any subscriber.
 */
import { Refusal, invalidField } from './errors.js';
import { LIMITS, checkSizeAndDepth, tooLarge } from './limits.js';
import { checkBodyId, checkKnownFields } from './fields.js';
import { MAX_ID_LENGTH, type SensorRecord } from '../../shared/records.js';

export { MAX_ID_LENGTH, type SensorRecord };

/** Properties a client may send; `updatedAt` is the server's to set. */
export const WRITABLE_FIELDS = ['id', 'location', 'temperature', 'humidity', 'battery', 'time'] as const;
type WritableField = (typeof WRITABLE_FIELDS)[number];

export const ID_RULE = `1-${MAX_ID_LENGTH} characters of letters, digits, "_", ":", "-", with "/" between segments`;
const ID_PATTERN = /^[A-Za-z0-9_:-]+(\/[A-Za-z0-9_:-]+)*$/;
const ABSOLUTE_ZERO = -273.15;
const MAX_LOCATION = 128;

/** The sensor id comes from the topic or path; this is the only shape we accept. */
export function checkSensorId(id: unknown): string {
  const text = typeof id === 'number' && Number.isInteger(id) ? String(id) : id;
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_ID_LENGTH || !ID_PATTERN.test(text)) {
    throw new Refusal({ error: 'invalid_id', field: 'id', rule: ID_RULE, message: `sensor id must be ${ID_RULE}` });
  }
  return text;
}

/**
 * Harper parses MQTT and WebSocket payloads itself and, when it cannot (broken JSON, or JSON it
 * does not take as a document, such as a top-level array on a WebSocket), hands the resource
 * `{ contentType, data: <bytes> }` instead of refusing. Recognise that shape and parse the bytes
 * ourselves, so the client is told what is really wrong rather than that it sent unknown fields.
 */
function unparsedBytes(body: object): Uint8Array | undefined {
  const { contentType, data } = body as { contentType?: unknown; data?: unknown };
  return Object.keys(body).length === 2 && typeof contentType === 'string' && data instanceof Uint8Array
    ? data
    : undefined;
}

function asObject(body: unknown): Record<string, unknown> {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const bytes = unparsedBytes(body);
    if (!bytes) {
      checkSizeAndDepth(body);
      return body as Record<string, unknown>;
    }
    if (bytes.length > LIMITS.maxRecordBytes) throw tooLarge(bytes.length);
    const { contentType } = body as { contentType: string };
    if (!/json|octet-stream/i.test(contentType)) {
      throw new Refusal(
        { error: 'unsupported_content_type', message: `content type "${contentType}" is not accepted; send JSON` },
        415,
      );
    }
    try {
      body = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw new Refusal({ error: 'malformed_json', message: 'payload is not valid JSON' });
    }
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  }
  throw new Refusal({ error: 'not_an_object', message: 'a reading must be a JSON object' });
}

function checkNumber(field: string, value: unknown, min: number, max: number, rule: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw invalidField(field, rule);
  return value;
}

/** Device time: milliseconds since the epoch, or an ISO 8601 string (stored as milliseconds). */
function checkTime(value: unknown): number {
  const rule = 'milliseconds since the epoch or an ISO 8601 date-time';
  const ms = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : value;
  return checkNumber('time', ms, 0, 8.64e15, rule);
}

const WRITABLE = new Set<string>(WRITABLE_FIELDS);

/** Validates the fields that are present; returns them typed. */
function checkFields(id: string, body: Record<string, unknown>): Partial<Omit<SensorRecord, 'updatedAt'>> {
  // Unknown fields are refused before any value is judged, whatever their place in the body.
  for (const key in body) if (!WRITABLE.has(key)) checkKnownFields(body, WRITABLE_FIELDS, ['updatedAt']);
  const out: Partial<Omit<SensorRecord, 'updatedAt'>> = {};
  for (const key in body) {
    const value = body[key];
    switch (key as WritableField) {
      case 'id':
        checkBodyId(value, id);
        break;
      case 'location':
        if (typeof value !== 'string' || value.trim().length === 0 || value.length > MAX_LOCATION) {
          throw invalidField('location', `a non-empty string of at most ${MAX_LOCATION} characters`);
        }
        out.location = value;
        break;
      case 'temperature':
        out.temperature = checkNumber(
          key,
          value,
          ABSOLUTE_ZERO,
          Number.MAX_VALUE,
          `a finite number >= ${ABSOLUTE_ZERO}`,
        );
        break;
      case 'humidity':
      case 'battery':
        out[key as 'humidity' | 'battery'] = checkNumber(key, value, 0, 100, 'a number from 0 to 100');
        break;
      case 'time':
        out.time = checkTime(value);
        break;
    }
  }
  return out;
}

function missingField(field: 'location' | 'temperature'): Refusal {
  return new Refusal({ error: 'missing_field', field, message: `${field} is required` });
}

function requireFields<T extends Partial<SensorRecord>>(
  record: T,
): asserts record is T & Pick<SensorRecord, 'location' | 'temperature'> {
  if (record.location === undefined) throw missingField('location');
  if (record.temperature === undefined) throw missingField('temperature');
}

/**
 * A complete reading (PUT, retained or non-retained MQTT, WebSocket, POST): replaces the state.
 * Its properties always come in the same order, whatever the client's order: Harper stores
 * records with shared MessagePack structures, one per shape.
 */
export function checkReading(id: unknown, body: unknown, now = Date.now()): SensorRecord {
  const sensorId = checkSensorId(id);
  const fields = checkFields(sensorId, asObject(body));
  requireFields(fields);
  const { location, temperature, humidity, battery, time } = fields;
  const record: SensorRecord = { id: sensorId, location, temperature, updatedAt: now };
  if (humidity !== undefined) record.humidity = humidity;
  if (battery !== undefined) record.battery = battery;
  if (time !== undefined) record.time = time;
  return record;
}

/**
 * A partial update (PATCH): the present fields are checked, and the merged result must still be
 * a complete reading, so a PATCH cannot create a sensor without a location or temperature.
 */
export function checkPatch(
  id: unknown,
  body: unknown,
  current: Partial<SensorRecord> | undefined,
  now = Date.now(),
): Partial<SensorRecord> & { updatedAt: number } {
  const sensorId = checkSensorId(id);
  const fields = checkFields(sensorId, asObject(body));
  // Read the two properties by name: Harper's record objects expose them as getters, which a
  // spread would not copy.
  requireFields({ location: current?.location, temperature: current?.temperature, ...fields });
  return { ...fields, updatedAt: now };
}
