/** Alert rules (lib/rules/alerts.ts): rule validation and the firing/resolved state machine. */
import { describe, expect, it } from 'vitest';
import { checkRule, nextState, type AlertRule, type AlertState } from '../../lib/rules/alerts.js';
import { refusalOf } from './refusal.js';

describe('rule validation', () => {
  it('accepts a rule for one sensor or all, with either threshold or both', () => {
    expect(checkRule('too-hot', { sensorId: '*', field: 'temperature', above: 30, hysteresis: 2 })).toEqual({
      id: 'too-hot',
      sensorId: '*',
      field: 'temperature',
      above: 30,
      hysteresis: 2,
    });
    expect(checkRule('dry', { id: 'dry', sensorId: 'site/1', field: 'humidity', below: 20, above: 80 })).toMatchObject({
      below: 20,
      above: 80,
    });
  });

  it.each([
    ['no threshold', { sensorId: '*', field: 'temperature' }, { error: 'missing_field', field: 'above' }],
    ['no sensorId', { field: 'temperature', above: 1 }, { error: 'missing_field', field: 'sensorId' }],
    [
      'a bad sensorId',
      { sensorId: 'a b', field: 'temperature', above: 1 },
      { error: 'invalid_field', field: 'sensorId' },
    ],
    [
      'an unknown field to watch',
      { sensorId: '*', field: 'pressure', above: 1 },
      { error: 'invalid_field', field: 'field' },
    ],
    [
      'below not under above',
      { sensorId: '*', field: 'battery', above: 10, below: 10 },
      { error: 'invalid_field', field: 'below' },
    ],
    [
      'a negative hysteresis',
      { sensorId: '*', field: 'battery', below: 10, hysteresis: -1 },
      { error: 'invalid_field', field: 'hysteresis', rule: 'a finite number >= 0' },
    ],
    [
      'a threshold that is not a number',
      { sensorId: '*', field: 'battery', above: '10' },
      { error: 'invalid_field', field: 'above', rule: 'a finite number' },
    ],
    [
      'an unknown property',
      { sensorId: '*', field: 'battery', above: 1, note: 'x' },
      { error: 'unknown_field', field: 'note' },
    ],
    [
      'a different id in the body',
      { id: 'other', sensorId: '*', field: 'battery', above: 1 },
      { error: 'id_mismatch' },
    ],
    ['not an object', [1], { error: 'not_an_object' }],
  ])('refuses %s', (_name, body, expected) => {
    expect(refusalOf(() => checkRule('r', body))).toMatchObject(expected);
  });
});

/** Feeds values through the state machine as the write path does; returns each transition. */
function run(rule: AlertRule, values: number[]): [number, AlertState][] {
  let state: AlertState | undefined;
  const transitions: [number, AlertState][] = [];
  for (const value of values) {
    const next = nextState(rule, value, state);
    if (next) transitions.push([value, (state = next)]);
  }
  return transitions;
}

describe('alert state', () => {
  const hot: AlertRule = { id: 'hot', sensorId: '*', field: 'temperature', above: 30, hysteresis: 2 };

  it('fires above the threshold, and resolves only once back inside by the hysteresis', () => {
    expect(run(hot, [29, 30, 31, 29, 28.5, 28, 31, 27])).toEqual([
      [31, 'firing'],
      [28, 'resolved'],
      [31, 'firing'],
      [27, 'resolved'],
    ]);
  });

  it('does not flap on a value hovering at the threshold', () => {
    expect(run(hot, [31, 29.5, 30.5, 29, 30.9])).toEqual([[31, 'firing']]);
  });

  it('watches both sides of a band', () => {
    const band: AlertRule = { id: 'band', sensorId: '*', field: 'humidity', below: 20, above: 80, hysteresis: 5 };
    expect(run(band, [50, 19, 24, 25, 81, 76, 75])).toEqual([
      [19, 'firing'],
      [25, 'resolved'],
      [81, 'firing'],
      [75, 'resolved'],
    ]);
  });

  it('without hysteresis resolves as soon as the value is back at the threshold', () => {
    const low: AlertRule = { id: 'low', sensorId: '*', field: 'battery', below: 10 };
    expect(run(low, [10, 9.9, 10])).toEqual([
      [9.9, 'firing'],
      [10, 'resolved'],
    ]);
  });
});
