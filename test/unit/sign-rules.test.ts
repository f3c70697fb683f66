/** The LED sign's rules (lib/rules/signs.ts): the sign record and its per-field topics. */
import { describe, expect, it } from 'vitest';
import { checkSign, checkSignField, MAX_MESSAGE, parseFieldTopic, scalarOf } from '../../lib/rules/signs.js';
import { refusalOf } from './refusal.js';

describe('sign fields', () => {
  it('takes per-field scalars as they arrive over MQTT', () => {
    expect(checkSignField('brightness', '12')).toBe(12);
    expect(checkSignField('brightness', 0)).toBe(0);
    expect(checkSignField('power', 'off')).toBe('off');
    expect(checkSignField('color', '#00FF7f')).toBe('#00ff7f');
    expect(checkSignField('message', 'Hello')).toBe('Hello');
  });

  it('counts a message in characters, not UTF-16 units', () => {
    expect(checkSignField('message', '😀'.repeat(MAX_MESSAGE))).toHaveLength(2 * MAX_MESSAGE);
    expect(refusalOf(() => checkSignField('message', '😀'.repeat(MAX_MESSAGE + 1)))).toMatchObject({
      error: 'invalid_field',
      field: 'message',
    });
    expect(refusalOf(() => checkSignField('message', 'x'.repeat(MAX_MESSAGE + 1)))).toMatchObject({ field: 'message' });
  });

  it.each([
    ['message', 'line\nbreak'],
    ['message', 5],
    ['brightness', 16],
    ['brightness', 1.5],
    ['brightness', ' '],
    ['power', 'ON'],
    ['color', 'green'],
    ['color', '#fff'],
  ] as const)('refuses %s = %j', (field, value) => {
    expect(refusalOf(() => checkSignField(field, value))).toMatchObject({ error: 'invalid_field', field });
  });
});

describe('sign writes', () => {
  it('a complete write needs all four fields; a partial one checks those present', () => {
    expect(checkSign('2FE598', { message: 'Hi', brightness: 7, power: 'on', color: '#00ff00' }, true)).toEqual({
      id: '2FE598',
      message: 'Hi',
      brightness: 7,
      power: 'on',
      color: '#00ff00',
    });
    expect(refusalOf(() => checkSign('2FE598', { message: 'Hi' }, true))).toMatchObject({
      error: 'missing_field',
      field: 'brightness',
    });
    expect(checkSign('2FE598', { power: 'off' }, false)).toEqual({ id: '2FE598', power: 'off' });
  });

  it('refuses server-set and unknown fields, a different id and what is not an object', () => {
    expect(refusalOf(() => checkSign('s', { updatedBy: 'me' }, false)).message).toMatch(
      /^updatedBy is set by the server/,
    );
    expect(refusalOf(() => checkSign('s', { blink: true }, false))).toMatchObject({
      error: 'unknown_field',
      field: 'blink',
    });
    expect(refusalOf(() => checkSign('s', { id: 't' }, false))).toMatchObject({ error: 'id_mismatch' });
    expect(refusalOf(() => checkSign('s', [], false))).toMatchObject({ error: 'not_an_object' });
    expect(refusalOf(() => checkSign('a b', {}, false))).toMatchObject({ error: 'invalid_id' });
  });
});

describe('per-field topics', () => {
  it('splits led-sign ids into the sign and the field', () => {
    expect(parseFieldTopic('2FE598/message')).toEqual({ signId: '2FE598', field: 'message' });
    expect(parseFieldTopic('site/7/color')).toEqual({ signId: 'site/7', field: 'color' });
  });

  it.each([['2FE598'], ['2FE598/volume'], ['/message'], [undefined]])('refuses %j', (id) => {
    expect(refusalOf(() => parseFieldTopic(id))).toMatchObject({ error: 'invalid_id' });
  });

  it('decodes raw payload bytes to text, and leaves oversize ones undecoded', () => {
    const raw = (text: string) => ({
      contentType: 'application/octet-stream',
      data: new Uint8Array(Buffer.from(text)),
    });
    expect(scalarOf(raw('12'))).toBe('12');
    expect(scalarOf(7)).toBe(7);
    const huge = raw('x'.repeat(4 * MAX_MESSAGE + 1));
    expect(scalarOf(huge)).toBe(huge);
  });
});
