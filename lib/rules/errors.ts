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
export type RefusalCode =
  | 'malformed_json' // the body or payload is not parseable JSON
  | 'not_an_object' // the payload parsed but is not a JSON object
  | 'unknown_field' // a property the table does not define
  | 'missing_field' // a required property is absent
  | 'invalid_field' // a property is present but breaks its rule
  | 'invalid_id' // the id from the topic/path is not an acceptable sensor id
  | 'id_mismatch' // the body names an id other than the topic/path
  | 'write_failed' // the server failed to store an accepted message (not the client's fault)
  | 'forbidden' // authenticated, but this user may not do this to this record
  | 'payload_too_large' // a record over the size limit (lib/rules/limits.ts)
  | 'too_deep' // a payload nested deeper than the limit
  | 'unsupported_content_type' // a REST body that is not JSON, CBOR, MessagePack or text
  | 'invalid_query' // a malformed replay parameter (startTime, previousCount)
  | 'not_stored' // a non-retained publish to a resource that only takes stored writes
  | 'method_not_allowed' // a write door (REST method, MQTT publish, WebSocket message) the table has no rules for
  | 'query_too_broad' // a query or replay that would read more than a request may (lib/harper/sort-condition-workaround.ts, lib/streams/replay.ts)
  | 'slow_consumer' // a subscriber that fell too far behind was cut off (lib/streams/slow-consumers.ts)
  | 'server_shutting_down'; // the last event of every subscription when Harper stops or restarts

export interface RefusalBody {
  error: RefusalCode;
  message: string;
  field?: string;
  rule?: string;
  allowed?: readonly string[];
}

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
