/**
 * Size and shape limits for everything clients send, in one place (documented in the README).
 *
 * Harper itself bounds little: a REST body or MQTT packet of any size is parsed whole, and a
 * WebSocket message may be up to 100 MB. These limits refuse what no sensor or topic needs before
 * it is stored or fanned out; the REST check runs before the body is parsed.
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

export function tooLarge(bytes: number): Refusal {
  return new Refusal(
    { error: 'payload_too_large', rule: `at most ${LIMITS.maxRecordBytes} bytes`, message: `payload is ${bytes} bytes; the limit is ${LIMITS.maxRecordBytes} bytes` },
    413,
  );
}

/** Refuses a parsed payload that is too deeply nested or too large. */
export function checkSizeAndDepth(value: unknown): void {
  // Depth first, with an iterative walk: JSON.stringify (and any recursive walk) overflows the
  // stack on a few thousand levels of nesting, which fit easily in a small payload.
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= LIMITS.maxDepth) {
      throw new Refusal({ error: 'too_deep', rule: `nesting of at most ${LIMITS.maxDepth} levels`, message: `payload nests deeper than ${LIMITS.maxDepth} levels` });
    }
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  const bytes = value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '');
  if (bytes > LIMITS.maxRecordBytes) throw tooLarge(bytes);
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
  const request = args.find((arg): arg is RequestLike => typeof (arg as RequestLike | null)?.headers?.get === 'function');
  const length = Number(request?.headers?.get('content-length') ?? 0);
  const type = request?.headers?.get('content-type');
  const refusal =
    length > LIMITS.maxRecordBytes
      ? tooLarge(length)
      : type && !ACCEPTED_TYPES.test(type)
        ? new Refusal(
            { error: 'unsupported_content_type', rule: 'application/json (or CBOR, MessagePack)', message: `content type "${type}" is not accepted; send JSON with Content-Type: application/json` },
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
          throw new Refusal({ error: 'malformed_json', message: `request body is not valid JSON (${String((error as Error)?.message ?? error)})` });
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
    throw new Refusal({ error: 'invalid_id', field: 'id', rule: `at most ${maxLength} characters`, message: `id is ${path.length - 1} characters; the limit is ${maxLength}` });
  }
}
