/**
 * Alert rules: what a rule is (checked on every write of the `rules` table) and how a reading moves
 * an alert between `firing` and `resolved`, with hysteresis so a value hovering at the threshold
 * does not flap. Pure functions: lib/resources/alerts.ts applies them in the write path.
 */
import { Refusal, invalidField } from './errors.js';
import { ID_RULE, checkSensorId } from './sensors.js';
import { checkBodyId, checkKnownFields } from './fields.js';
import { MEASURES, type AlertState, type Measure } from '../../shared/records.js';

/** The fields a rule may watch: every measured field of a reading. */
export const RULE_FIELDS = MEASURES;
export type RuleField = Measure;

export interface AlertRule {
  id: string;
  /** A sensor id, or "*" for every sensor. */
  sensorId: string;
  field: RuleField;
  above?: number;
  below?: number;
  hysteresis?: number;
}

export type { AlertState };

const WRITABLE = ['id', 'sensorId', 'field', 'above', 'below', 'hysteresis'];

function finite(field: string, value: unknown, min = -Number.MAX_VALUE): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min)
    throw invalidField(field, min === 0 ? 'a finite number >= 0' : 'a finite number');
  return value;
}

/** Checks a rule written over REST or MQTT; the id comes from the path or topic. */
export function checkRule(id: unknown, body: unknown): AlertRule {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Refusal({ error: 'not_an_object', message: 'a rule must be a JSON object' });
  }
  const input = body as Record<string, unknown>;
  checkKnownFields(input, WRITABLE);
  const ruleId = checkSensorId(id); // same shape as sensor ids: letters, digits, _ : -
  if (input.id !== undefined) checkBodyId(input.id, ruleId);
  if (input.sensorId === undefined)
    throw new Refusal({
      error: 'missing_field',
      field: 'sensorId',
      message: 'sensorId is required (a sensor id, or "*")',
    });
  if (input.sensorId !== '*') {
    try {
      checkSensorId(input.sensorId);
    } catch {
      throw invalidField('sensorId', `"*" or a sensor id (${ID_RULE})`);
    }
  }
  if (!RULE_FIELDS.includes(input.field as RuleField)) throw invalidField('field', `one of ${RULE_FIELDS.join(', ')}`);
  const rule: AlertRule = { id: ruleId, sensorId: String(input.sensorId), field: input.field as RuleField };
  if (input.above !== undefined) rule.above = finite('above', input.above);
  if (input.below !== undefined) rule.below = finite('below', input.below);
  if (input.hysteresis !== undefined) rule.hysteresis = finite('hysteresis', input.hysteresis, 0);
  if (rule.above === undefined && rule.below === undefined) {
    throw new Refusal({ error: 'missing_field', field: 'above', message: 'a rule needs "above", "below" or both' });
  }
  if (rule.above !== undefined && rule.below !== undefined && rule.below >= rule.above) {
    throw invalidField('below', 'less than "above"');
  }
  return rule;
}

/**
 * The alert's next state after a reading, or undefined when it does not change.
 * Fires when the value goes above `above` or below `below`; resolves only once it is back inside
 * by at least `hysteresis` (at or under above - h, and at or over below + h).
 */
export function nextState(rule: AlertRule, value: number, current: AlertState | undefined): AlertState | undefined {
  const h = rule.hysteresis ?? 0;
  if (current === 'firing') {
    const clear =
      (rule.above === undefined || value <= rule.above - h) && (rule.below === undefined || value >= rule.below + h);
    return clear ? 'resolved' : undefined;
  }
  const breach = (rule.above !== undefined && value > rule.above) || (rule.below !== undefined && value < rule.below);
  return breach ? 'firing' : undefined;
}
