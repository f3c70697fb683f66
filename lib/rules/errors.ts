/**
 * Every refusal the backbone sends, in one place, so that REST, MQTT and WebSocket clients see the
 * same codes and the same wording for the same mistake.
 *
 * A Refusal is deliberately NOT an `Error` subclass. Harper's REST handler serialises a thrown
 * `Error` as a bare string ("Error: ..."), but serialises any other thrown value as the response
 * body, using its `statusCode` for the status. A plain object therefore gives REST clients a JSON
 * body that names the field and the rule. Harper's MQTT handler turns any thrown value into a
 * PUBACK/PUBREC reason code 128 (MQTT 5), and our WebSocket writer sends `toJSON()` back verbatim.
 */
import type { RefusalBody, RefusalCode } from '../../shared/records.js';

export type { RefusalBody, RefusalCode };

export class Refusal implements RefusalBody {
  declare readonly statusCode: number;
  readonly error: RefusalCode;
  readonly message: string;
  readonly field?: string;
  readonly rule?: string;
  readonly allowed?: readonly string[];

  constructor(body: RefusalBody, statusCode = 400) {
    this.error = body.error;
    this.message = body.message;
    if (body.field !== undefined) this.field = body.field;
    if (body.rule !== undefined) this.rule = body.rule;
    if (body.allowed !== undefined) this.allowed = body.allowed;
    // Non-enumerable: Harper reads it for the HTTP status, but it stays out of the JSON body.
    Object.defineProperty(this, 'statusCode', { value: statusCode, enumerable: false });
  }

  toJSON(): RefusalBody {
    const { error, message, field, rule, allowed } = this;
    return { error, message, field, rule, allowed };
  }

  toString(): string {
    return `${this.error}: ${this.message}`;
  }
}

export function isRefusal(value: unknown): value is Refusal {
  return value instanceof Refusal;
}

/** A field that breaks its rule; the message is built from the two so they never disagree. */
export function invalidField(field: string, rule: string): Refusal {
  return new Refusal({ error: 'invalid_field', field, rule, message: `${field} must be ${rule}` });
}

/** An authenticated user acting outside their rights (REST 403, WebSocket error, MQTT 5 code 128). */
export function forbidden(message: string): Refusal {
  return new Refusal({ error: 'forbidden', message }, 403);
}
