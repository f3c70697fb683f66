/** The `sensors` rules (lib/rules/sensors.ts): what a reading is and how each mistake is refused. */
import { describe, expect, it } from 'vitest';
import { checkPatch, checkReading, checkSensorId, WRITABLE_FIELDS } from '../../lib/rules/sensors.js';
import { refusalOf } from './refusal.js';

const bytes = (text: string, contentType = 'application/json') => ({
  contentType,
  data: new Uint8Array(Buffer.from(text)),
});

describe('sensor ids', () => {
  it('accepts letters, digits, _ : - and segments joined by /, and integer ids as text', () => {
    expect(checkSensorId('site-a/101')).toBe('site-a/101');
    expect(checkSensorId('a_b:c-d')).toBe('a_b:c-d');
    expect(checkSensorId(101)).toBe('101');
    expect(checkSensorId('x'.repeat(128))).toHaveLength(128);
  });

  it.each([[''], ['x'.repeat(129)], ['a b'], ['a//b'], ['/a'], ['a/'], ['a.b'], [1.5], [null], [undefined], [{}]])(
    'refuses %j as invalid_id',
    (id) => {
      expect(refusalOf(() => checkSensorId(id))).toMatchObject({ error: 'invalid_id', field: 'id', statusCode: 400 });
    },
  );
});

describe('complete readings', () => {
  it('keeps the fields sent, stamps updatedAt and takes the id from the path', () => {
    expect(checkReading('101', { location: 'lab', temperature: 21.5, humidity: 40, battery: 99 }, 1_000)).toEqual({
      id: '101',
      location: 'lab',
      temperature: 21.5,
      humidity: 40,
      battery: 99,
      updatedAt: 1_000,
    });
  });

  it('stores an ISO 8601 device time as milliseconds', () => {
    expect(checkReading('1', { location: 'lab', temperature: 1, time: '2026-01-01T00:00:00Z' }, 5).time).toBe(
      Date.UTC(2026, 0, 1),
    );
    expect(checkReading('1', { location: 'lab', temperature: 1, time: 42 }, 5).time).toBe(42);
  });

  it('accepts an id in the body equal to the path, and refuses another one', () => {
    expect(checkReading('101', { id: 101, location: 'lab', temperature: 1 }, 0).id).toBe('101');
    expect(refusalOf(() => checkReading('101', { id: '102', location: 'lab', temperature: 1 }))).toMatchObject({
      error: 'id_mismatch',
      field: 'id',
    });
  });

  it('names the first unknown field and lists the allowed ones', () => {
    const refusal = refusalOf(() => checkReading('1', { location: 'lab', temperature: 1, colour: 'red' }));
    expect(refusal).toMatchObject({ error: 'unknown_field', field: 'colour', allowed: [...WRITABLE_FIELDS] });
    expect(refusal.message).toContain('unknown field "colour"');
  });

  it("tells a client that updatedAt is the server's", () => {
    expect(refusalOf(() => checkReading('1', { location: 'lab', temperature: 1, updatedAt: 5 })).message).toMatch(
      /^updatedAt is set by the server/,
    );
  });

  it('requires location and temperature', () => {
    expect(refusalOf(() => checkReading('1', { temperature: 1 }))).toMatchObject({
      error: 'missing_field',
      field: 'location',
    });
    expect(refusalOf(() => checkReading('1', { location: 'lab' }))).toMatchObject({
      error: 'missing_field',
      field: 'temperature',
    });
  });

  it.each([
    ['temperature', -273.16, 'a finite number >= -273.15'],
    ['temperature', Number.NaN, 'a finite number >= -273.15'],
    ['temperature', '21', 'a finite number >= -273.15'],
    ['humidity', 101, 'a number from 0 to 100'],
    ['battery', -1, 'a number from 0 to 100'],
    ['location', '   ', 'a non-empty string of at most 128 characters'],
    ['location', 'x'.repeat(129), 'a non-empty string of at most 128 characters'],
    ['time', 'yesterday', 'milliseconds since the epoch or an ISO 8601 date-time'],
  ])('refuses %s = %j with its rule, the message built from field and rule', (field, value, rule) => {
    const body = { location: 'lab', temperature: 1, [field]: value };
    expect(refusalOf(() => checkReading('1', body))).toEqual({
      error: 'invalid_field',
      field,
      rule,
      message: `${field} must be ${rule}`,
      statusCode: 400,
    });
  });

  it('accepts the boundary values', () => {
    expect(() =>
      checkReading('1', { location: 'x'.repeat(128), temperature: -273.15, humidity: 0, battery: 100 }),
    ).not.toThrow();
  });

  it('refuses what is not an object', () => {
    for (const body of [null, 5, 'text', [1, 2]]) {
      expect(refusalOf(() => checkReading('1', body))).toMatchObject({ error: 'not_an_object' });
    }
  });

  it('parses the bytes Harper hands over when it could not parse a payload itself', () => {
    expect(checkReading('1', bytes('{"location":"lab","temperature":3}'), 7)).toEqual({
      id: '1',
      location: 'lab',
      temperature: 3,
      updatedAt: 7,
    });
    expect(refusalOf(() => checkReading('1', bytes('{"location":')))).toMatchObject({ error: 'malformed_json' });
    expect(refusalOf(() => checkReading('1', bytes('[1,2]')))).toMatchObject({ error: 'not_an_object' });
    expect(refusalOf(() => checkReading('1', bytes('<a/>', 'application/xml')))).toMatchObject({
      error: 'unsupported_content_type',
      statusCode: 415,
    });
    expect(refusalOf(() => checkReading('1', bytes('x'.repeat(64 * 1024 + 1))))).toMatchObject({
      error: 'payload_too_large',
      statusCode: 413,
    });
  });
});

describe('patches', () => {
  it('checks only the fields sent, and stamps updatedAt', () => {
    expect(checkPatch('1', { humidity: 45 }, { location: 'lab', temperature: 20 }, 9)).toEqual({
      humidity: 45,
      updatedAt: 9,
    });
  });

  it('may not leave a sensor without location or temperature', () => {
    expect(refusalOf(() => checkPatch('1', { humidity: 45 }, undefined))).toMatchObject({
      error: 'missing_field',
      field: 'location',
    });
    expect(checkPatch('1', { location: 'hall', temperature: 2 }, undefined, 3)).toEqual({
      location: 'hall',
      temperature: 2,
      updatedAt: 3,
    });
  });

  it("reads the current state through getters, as Harper's records expose it", () => {
    const current = Object.create({
      get location() {
        return 'lab';
      },
      get temperature() {
        return 20;
      },
    }) as { location: string; temperature: number };
    expect(checkPatch('1', { battery: 50 }, current, 1)).toEqual({ battery: 50, updatedAt: 1 });
  });
});
