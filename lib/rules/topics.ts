/**
 * The rules of the `topics` catch-all: any topic name is a record id, any payload is stored as
 * sent, within the limits of lib/rules/limits.ts and the MQTT topic-name rules.
 */
import { Refusal } from './errors.js';
import { LIMITS, checkSizeAndDepth } from './limits.js';

const TOPIC_RULE = `1-${LIMITS.maxTopicLength} characters, no control characters, no empty, "." or ".." levels, no wildcards`;

export function checkTopic(id: unknown): string {
  const topic = typeof id === 'string' ? id : Array.isArray(id) ? id.join('/') : String(id ?? '');
  const levels = topic.split('/');
  const bad =
    topic.length === 0 ||
    topic.length > LIMITS.maxTopicLength ||
    /[\u0000-\u001f\u007f]/.test(topic) ||
    // MQTT 3.1.1 §4.7.1: wildcards are for filters, never in the name of a published topic.
    /[#+]/.test(topic) ||
    levels.some((level) => level === '' || level === '.' || level === '..');
  if (bad)
    throw new Refusal({ error: 'invalid_id', field: 'id', rule: TOPIC_RULE, message: `topic must be ${TOPIC_RULE}` });
  return topic;
}

/** A publish or write to a topic: a valid name and a payload within the limits. */
export function checkTopicWrite(id: unknown, payload: unknown): void {
  checkTopic(id);
  checkSizeAndDepth(payload);
}
