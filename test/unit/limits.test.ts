/** Size, depth, content-type and path limits (lib/rules/limits.ts). */
import { describe, expect, it } from 'vitest';
import {
  checkPathLength,
  checkRequestBody,
  checkSizeAndDepth,
  LIMITS,
  MAX_WIRE_BYTES,
} from '../../lib/rules/limits.js';
import { refusalOf, refusalOfAsync } from './refusal.js';

/** An object nested `depth` levels deep. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

const request = (headers: Record<string, string>) => ({ headers: { get: (name: string) => headers[name] ?? null } });

describe('size and depth', () => {
  it('accepts a record just within both limits', () => {
    expect(() => checkSizeAndDepth(nested(LIMITS.maxDepth))).not.toThrow();
    expect(() => checkSizeAndDepth({ text: 'x'.repeat(LIMITS.maxRecordBytes - 20) })).not.toThrow();
  });

  it('refuses one level too deep, also far beyond what a recursive walk survives', () => {
    expect(refusalOf(() => checkSizeAndDepth(nested(LIMITS.maxDepth + 1)))).toMatchObject({
      error: 'too_deep',
      statusCode: 400,
    });
    expect(refusalOf(() => checkSizeAndDepth(nested(100_000)))).toMatchObject({ error: 'too_deep' });
  });

  it('refuses what is too large, counting multi-byte characters as UTF-8', () => {
    expect(refusalOf(() => checkSizeAndDepth({ text: 'x'.repeat(LIMITS.maxRecordBytes) }))).toMatchObject({
      error: 'payload_too_large',
      statusCode: 413,
    });
    expect(refusalOf(() => checkSizeAndDepth({ text: 'é'.repeat(LIMITS.maxRecordBytes / 2) }))).toMatchObject({
      error: 'payload_too_large',
    });
    expect(refusalOf(() => checkSizeAndDepth('x'.repeat(LIMITS.maxRecordBytes)))).toMatchObject({
      error: 'payload_too_large',
    });
  });

  it('refuses a huge array by its length, before looking at its elements', () => {
    const array = new Array<unknown>(LIMITS.maxRecordBytes);
    Object.defineProperty(array, 0, {
      get() {
        throw new Error('an element was read');
      },
    });
    expect(refusalOf(() => checkSizeAndDepth(array))).toMatchObject({ error: 'payload_too_large' });
  });

  it('counts keys too', () => {
    const keys = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`key-${i}`, 0]));
    expect(refusalOf(() => checkSizeAndDepth(keys))).toMatchObject({ error: 'payload_too_large' });
  });
});

describe('REST bodies', () => {
  it('refuses an oversize Content-Length and unaccepted content types before the body is read', () => {
    const body = Promise.reject(new Error('never read'));
    expect(
      refusalOf(() => checkRequestBody([request({ 'content-length': String(LIMITS.maxRecordBytes + 1) }), body])),
    ).toMatchObject({
      error: 'payload_too_large',
      statusCode: 413,
    });
    expect(
      refusalOf(() => checkRequestBody([request({ 'content-type': 'application/x-www-form-urlencoded' })])),
    ).toMatchObject({
      error: 'unsupported_content_type',
      statusCode: 415,
    });
  });

  it('accepts JSON, CBOR, MessagePack, +json and text', () => {
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
      'application/cbor',
      'application/x-msgpack',
      'application/vnd.x+json',
      'text/plain',
    ]) {
      expect(() => checkRequestBody([request({ 'content-type': type })])).not.toThrow();
    }
  });

  it('turns a body Harper failed to parse into malformed_json, and one it stopped reading into payload_too_large', async () => {
    const [parsed] = checkRequestBody([Promise.reject(new SyntaxError('Unexpected end'))]);
    expect(await refusalOfAsync(() => parsed as Promise<unknown>)).toMatchObject({
      error: 'malformed_json',
      statusCode: 400,
    });
    const [cut] = checkRequestBody([Promise.reject(Object.assign(new Error('too big'), { statusCode: 413 }))]);
    expect(await refusalOfAsync(() => cut as Promise<unknown>)).toMatchObject({
      error: 'payload_too_large',
      statusCode: 413,
    });
    expect(MAX_WIRE_BYTES).toBe(4 * LIMITS.maxRecordBytes);
  });
});

describe('paths', () => {
  it('refuses an id longer than the limit (the path holds a leading slash)', () => {
    expect(() => checkPathLength(`/${'x'.repeat(128)}`, 128)).not.toThrow();
    expect(refusalOf(() => checkPathLength(`/${'x'.repeat(129)}`, 128))).toMatchObject({
      error: 'invalid_id',
      message: 'id is 129 characters; the limit is 128',
    });
  });
});
