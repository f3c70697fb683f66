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

/** Refuses a parsed payload that is too large or too deeply nested. */
export function checkSizeAndDepth(value: unknown): void {
  const bytes = value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '');
  if (bytes > LIMITS.maxRecordBytes) throw tooLarge(bytes);
  // Iterative walk: a recursive one could itself be made to overflow the stack.
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= LIMITS.maxDepth) {
      throw new Refusal({ error: 'too_deep', rule: `nesting of at most ${LIMITS.maxDepth} levels`, message: `payload nests deeper than ${LIMITS.maxDepth} levels` });
    }
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
}

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
  if (length > LIMITS.maxRecordBytes) {
    for (const arg of args) if (arg instanceof Promise) arg.catch(() => undefined); // the body is not wanted
    throw tooLarge(length);
  }
  return args.map((arg) =>
    arg instanceof Promise
      ? arg.catch((error: unknown) => {
          throw new Refusal({ error: 'malformed_json', message: `request body is not valid JSON (${String((error as Error)?.message ?? error)})` });
        })
      : arg,
  );
}
