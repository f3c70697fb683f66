/** lib/rules/fields.ts: every table refuses an unknown field and a mismatched id with the same body. */
import { describe, expect, it } from 'vitest';
import { checkReading } from '../../lib/rules/sensors.js';
import { checkSign } from '../../lib/rules/signs.js';
import { checkRule } from '../../lib/rules/alerts.js';
import { refusalOf } from './refusal.js';

const rule = { sensorId: '*', field: 'temperature', above: 30 };

describe('shared field refusals', () => {
  it('words id_mismatch the same for sensors, signs and rules', () => {
    const expected = {
      error: 'id_mismatch',
      field: 'id',
      rule: 'equal to the id in the topic or path',
      message: 'id in the body ("b") does not match the topic/path id ("a")',
    };
    expect(refusalOf(() => checkReading('a', { id: 'b', location: 'lab', temperature: 1 }))).toMatchObject(expected);
    expect(refusalOf(() => checkSign('a', { id: 'b' }, false))).toMatchObject(expected);
    expect(refusalOf(() => checkRule('a', { ...rule, id: 'b' }))).toMatchObject(expected);
  });

  it('words unknown_field the same, listing each table its own fields', () => {
    const message = (allowed: string) => `unknown field "blink"; allowed fields: ${allowed}`;
    expect(refusalOf(() => checkReading('a', { location: 'lab', temperature: 1, blink: 1 })).message).toBe(
      message('id, location, temperature, humidity, battery, time'),
    );
    expect(refusalOf(() => checkSign('a', { blink: 1 }, false)).message).toBe(
      message('id, message, brightness, power, color'),
    );
    expect(refusalOf(() => checkRule('a', { ...rule, blink: 1 })).message).toBe(
      message('id, sensorId, field, above, below, hysteresis'),
    );
  });
});
