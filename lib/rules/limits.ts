/**
 * Size and shape limits for everything clients send, in one place (documented in the README).
 *
 * Harper 4.7 bounds little by itself: an MQTT packet of any size is buffered whole (its parser has
 * no limit), a WebSocket message may be 100 MB and a REST body 10 MB. So the cheapest checks come
 * first, on raw bytes where we have them:
 * - REST: `Content-Length` here, before the body is parsed; a chunked body is cut off by Harper's
 *   `http.maxRequestBodySize`, which `npm start` and `npm run deploy` set to MAX_WIRE_BYTES;
 * - MQTT packets and WebSocket messages over MAX_WIRE_BYTES are refused by lib/mqtt/wire-limits.ts
 *   while their first bytes arrive, before Harper buffers or parses them;
 * - what is left (at most MAX_WIRE_BYTES, already parsed by Harper) gets `checkSizeAndDepth`: a
 *   walk that stops as soon as the value is too deep or too large, holding no copy of it.
 */
import { Refusal } from './errors.js';

export const LIMITS = {
  /** Largest record or message, as JSON. */
  maxRecordBytes: 64 * 1024,
  /** Deepest nesting of objects and arrays in a topic payload. */
  maxDepth: 32,
  /** Longest topic name (the catch-all's record id). */
  maxTopicLength: 1024,
} as const;

/**
 * The largest MQTT packet, WebSocket message or REST body Harper is allowed to take in: a small
 * multiple of the record limit, so that a record at the limit still fits with its topic, framing
 * and JSON escapes, while no single message can make the server buffer megabytes.
 */
export const MAX_WIRE_BYTES = 4 * LIMITS.maxRecordBytes;

export function tooLarge(bytes: number, atLeast = false): Refusal {
  return new Refusal(
    {
      error: 'payload_too_large',
      rule: `at most ${LIMITS.maxRecordBytes} bytes`,
      message: `payload is ${atLeast ? 'more than ' : ''}${bytes} bytes; the limit is ${LIMITS.maxRecordBytes} bytes`,
    },
    413,
  );
}

function tooDeep(): Refusal {
  return new Refusal({
    error: 'too_deep',
    rule: `nesting of at most ${LIMITS.maxDepth} levels`,
    message: `payload nests deeper than ${LIMITS.maxDepth} levels`,
  });
}

/**
 * The JSON size of a scalar, counted without building its text: a string's UTF-8 bytes plus its
 * quotes (escapes not counted, so this never over-counts), a number's digits, true/false/null.
 */
function scalarBytes(value: unknown, budget: number): number {
  switch (typeof value) {
    case 'string':
      // A string has at least as many UTF-8 bytes as UTF-16 units: an overlong one is refused
      // without reading it.
      return value.length > budget ? value.length + 2 : Buffer.byteLength(value) + 2;
    case 'number':
    case 'bigint':
      return String(value).length;
    case 'boolean':
      return value ? 4 : 5;
    default:
      return 4; // null (undefined and functions are not JSON, and cannot come from a parser)
  }
}

/**
 * An object of at most 64 keys of at most 128 characters, whose values are scalars and strings of
 * at most 128 characters, is at most 64 x (2 x (128 x 3 + 2) + 2) + 2 = 49,538 bytes of JSON
 * (3 UTF-8 bytes per UTF-16 unit at most), under the record limit whatever it holds, and one
 * level deep: a reading always is, so it is let through without counting its bytes.
 */
const FLAT_MAX_KEYS = 64;
const FLAT_MAX_CHARS = 128;
const FLAT_MAX_BYTES = FLAT_MAX_KEYS * (2 * (FLAT_MAX_CHARS * 3 + 2) + 2) + 2;
function isSmallFlatObject(value: object): boolean {
  if (Array.isArray(value)) return false;
  let keys = 0;
  for (const key in value) {
    if (++keys > FLAT_MAX_KEYS || key.length > FLAT_MAX_CHARS) return false;
    const field = (value as Record<string, unknown>)[key];
    if (typeof field === 'string' ? field.length > FLAT_MAX_CHARS : field !== null && typeof field === 'object')
      return false;
  }
  return true;
}

/**
 * Refuses a parsed payload that nests deeper than LIMITS.maxDepth or whose JSON would exceed
 * LIMITS.maxRecordBytes. Iterative (a recursive walk, like JSON.stringify, overflows the stack on
 * a few thousand levels, which fit easily in a small payload) and bounded: it counts bytes as it
 * goes and stops at the first node past either limit, so its work and memory are proportional to
 * the limit, not to the payload. An array's length is counted before its elements are visited,
 * and no per-node arrays or text copies are made (the stack holds at most ~limit nodes).
 */
export function checkSizeAndDepth(value: unknown): void {
  const limit = LIMITS.maxRecordBytes;
  if (FLAT_MAX_BYTES <= limit && value !== null && typeof value === 'object' && isSmallFlatObject(value)) return;
  if (value === null || typeof value !== 'object') {
    const bytes = value === undefined ? 0 : scalarBytes(value, limit);
    if (bytes > limit) throw tooLarge(bytes, true);
    return;
  }
  let bytes = 0;
  const nodes: unknown[] = [value];
  const depths: number[] = [0];
  while (nodes.length > 0) {
    const node = nodes.pop();
    const depth = depths.pop()!;
    if (node === null || typeof node !== 'object') {
      bytes += scalarBytes(node, limit - bytes);
    } else {
      if (depth >= LIMITS.maxDepth) throw tooDeep();
      if (Array.isArray(node)) {
        // Brackets and commas first: a huge array is refused before any element is looked at.
        bytes += 2 + Math.max(0, node.length - 1);
        if (bytes > limit) throw tooLarge(bytes, true);
        for (let i = node.length - 1; i >= 0; i--) {
          nodes.push(node[i]);
          depths.push(depth + 1);
        }
      } else {
        bytes += 2;
        for (const key in node) {
          if (!Object.prototype.hasOwnProperty.call(node, key)) continue;
          // "key": plus a comma; stop as soon as the keys alone are over the limit.
          bytes += scalarBytes(key, limit - bytes) + 2;
          if (bytes > limit) throw tooLarge(bytes, true);
          nodes.push((node as Record<string, unknown>)[key]);
          depths.push(depth + 1);
        }
      }
    }
    if (bytes > limit) throw tooLarge(bytes, true);
  }
}

/** Content types a write may use: what Harper parses into structured data (and plain text). */
const ACCEPTED_TYPES = /^(application\/(json|cbor|x-msgpack|msgpack|[\w.+-]*\+json)|text\/plain)\s*(;|$)/i;

interface RequestLike {
  headers?: { get(name: string): string | null | undefined };
}

/**
 * For REST: the static put/patch/post receive the request as context and the body as a promise
 * Harper is still parsing. Refuse an oversize body by its Content-Length before waiting for it,
 * and turn a parse failure (which Harper reports as a 500) into our 400.
 */
export function checkRequestBody(args: unknown[]): unknown[] {
  const request = args.find(
    (arg): arg is RequestLike => typeof (arg as RequestLike | null)?.headers?.get === 'function',
  );
  const length = Number(request?.headers?.get('content-length') ?? 0);
  const type = request?.headers?.get('content-type');
  const refusal =
    length > LIMITS.maxRecordBytes
      ? tooLarge(length)
      : type && !ACCEPTED_TYPES.test(type)
        ? new Refusal(
            {
              error: 'unsupported_content_type',
              rule: 'application/json (or CBOR, MessagePack)',
              message: `content type "${type}" is not accepted; send JSON with Content-Type: application/json`,
            },
            415,
          )
        : undefined;
  if (refusal) {
    for (const arg of args) if (arg instanceof Promise) arg.catch(() => undefined); // the body is not wanted
    throw refusal;
  }
  return args.map((arg) =>
    arg instanceof Promise
      ? arg.catch((error: unknown) => {
          // A body without Content-Length (chunked) that Harper stopped reading at
          // http.maxRequestBodySize: too large, not malformed.
          if ((error as { statusCode?: unknown } | null)?.statusCode === 413) throw tooLarge(MAX_WIRE_BYTES, true);
          throw new Refusal({
            error: 'malformed_json',
            message: `request body is not valid JSON (${String((error as Error)?.message ?? error)})`,
          });
        })
      : arg,
  );
}

/**
 * Ids come from the URL path or topic. Harper refuses keys over its storage limit with a 500 before
 * any resource method runs, so an overlong path is refused here, in `parsePath`, as the client's
 * mistake.
 */
export function checkPathLength(path: unknown, maxLength: number): void {
  if (typeof path === 'string' && path.length > maxLength + 1) {
    throw new Refusal({
      error: 'invalid_id',
      field: 'id',
      rule: `at most ${maxLength} characters`,
      message: `id is ${path.length - 1} characters; the limit is ${maxLength}`,
    });
  }
}
