/**
 * The rules of the `signs` table (the LED sign): what a sign's state is, and what is refused.
 * Also the per-field form of the LED-sign demo's topics (led-sign/<id>/message, .../brightness,
 * .../power, .../color) with scalar payloads, and how desired and reported state are compared.
 */
import { Refusal, invalidField } from './errors.js';
import { checkSizeAndDepth } from './limits.js';
import { checkBodyId, checkKnownFields } from './fields.js';
import { checkSensorId } from './sensors.js';
import { MAX_MESSAGE, SIGN_FIELDS, type SignField, type SignRecord, type SignState } from '../../shared/records.js';

export { MAX_MESSAGE, SIGN_FIELDS, type SignField, type SignRecord, type SignState };

const WRITABLE = ['id', ...SIGN_FIELDS];
/** Fields of a stored sign that no client writes (who writes decides desired or reported). */
const SERVER_SET = ['updatedAt', 'updatedBy', 'reported', 'reportedAt', 'reportedBy', 'pending', 'shownAt'];

/** Sign ids follow the sensor id rule (a device named 2FE598 owns signs/2FE598). */
export const checkSignId = checkSensorId;

/**
 * Whether `text` has more than `max` characters (code points), read without copying it: a string
 * longer than 2 * max UTF-16 units has more than max code points whatever it holds, so an
 * oversize message is refused in O(1) (spreading it into an array cost memory in its size).
 */
function codePointsOver(text: string, max: number): boolean {
  if (text.length <= max) return false;
  if (text.length > 2 * max) return true;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    if (++count > max) return true;
  }
  return false;
}

/** Checks one field's value; scalars from the per-field topics arrive as strings or numbers. */
export function checkSignField(field: SignField, value: unknown): SignState[SignField] {
  switch (field) {
    case 'message': {
      const rule = `a string of at most ${MAX_MESSAGE} printable characters`;
      if (typeof value !== 'string' || codePointsOver(value, MAX_MESSAGE) || /[\u0000-\u001f\u007f-\u009f]/.test(value))
        throw invalidField('message', rule);
      return value;
    }
    case 'brightness': {
      const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof number !== 'number' || !Number.isInteger(number) || number < 0 || number > 15)
        throw invalidField('brightness', 'an integer from 0 to 15');
      return number;
    }
    case 'power':
      if (value !== 'on' && value !== 'off') throw invalidField('power', '"on" or "off"');
      return value;
    case 'color':
      if (typeof value !== 'string' || !/^#[0-9a-fA-F]{6}$/.test(value))
        throw invalidField('color', 'a colour "#rrggbb"');
      return value.toLowerCase();
  }
}

function asObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new Refusal({ error: 'not_an_object', message: 'a sign must be a JSON object' });
  checkSizeAndDepth(body);
  return body as Record<string, unknown>;
}

/** Checks the present fields of a sign write; with `complete`, all four are required. */
export function checkSign(id: unknown, body: unknown, complete: boolean): Partial<SignState> & { id: string } {
  const signId = checkSignId(id);
  const input = asObject(body);
  checkKnownFields(input, WRITABLE, SERVER_SET);
  if (input.id !== undefined) checkBodyId(input.id, signId);
  const state: Partial<SignState> & { id: string } = { id: signId };
  for (const field of SIGN_FIELDS) {
    if (input[field] === undefined) {
      if (complete) throw new Refusal({ error: 'missing_field', field, message: `${field} is required` });
      continue;
    }
    (state as Record<string, unknown>)[field] = checkSignField(field, input[field]);
  }
  return state;
}

/** The fields of `desired` that `reported` does not show (a field never reported is pending). */
export function pendingFields(desired: Partial<SignState>, reported: Partial<SignState> | undefined): SignField[] {
  return SIGN_FIELDS.filter((field) => desired[field] !== undefined && reported?.[field] !== desired[field]);
}

/** `2FE598/message` -> { signId: '2FE598', field: 'message' }; refused for anything else. */
export function parseFieldTopic(id: unknown): { signId: string; field: SignField } {
  const text = String(id ?? '');
  const slash = text.lastIndexOf('/');
  const field = text.slice(slash + 1) as SignField;
  if (slash <= 0 || !SIGN_FIELDS.includes(field)) {
    throw new Refusal({
      error: 'invalid_id',
      field: 'id',
      rule: `led-sign/<sign id>/(${SIGN_FIELDS.join('|')})`,
      message: `topic must be led-sign/<sign id>/<${SIGN_FIELDS.join('|')}>`,
    });
  }
  return { signId: checkSignId(text.slice(0, slash)), field };
}

/** Per-field payloads are scalars; a JSON string or number may also arrive parsed. */
export function scalarOf(payload: unknown): unknown {
  if (payload !== null && typeof payload === 'object') {
    const { contentType, data } = payload as { contentType?: unknown; data?: unknown };
    if (typeof contentType === 'string' && data instanceof Uint8Array) {
      // No per-field value is longer than a message (4 bytes per character at most): more bytes
      // than that are not decoded into a string, and checkSignField refuses them as they are.
      if (data.length > 4 * MAX_MESSAGE) return payload;
      return Buffer.from(data.buffer, data.byteOffset, data.length).toString('utf8');
    }
  }
  return payload;
}
