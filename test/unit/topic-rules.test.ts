/** The catch-all topic space's rules (lib/rules/topics.ts). */
import { describe, expect, it } from 'vitest';
import { checkTopic, checkTopicWrite } from '../../lib/rules/topics.js';
import { refusalOf } from './refusal.js';

describe('topic names', () => {
  it('accepts nested topics, and ids Harper hands over as arrays', () => {
    expect(checkTopic('factory/line-1/status')).toBe('factory/line-1/status');
    expect(checkTopic(['led-sign', '2FE598', 'message'])).toBe('led-sign/2FE598/message');
    expect(checkTopic('t'.repeat(1024))).toHaveLength(1024);
  });

  it.each([
    [''],
    ['t'.repeat(1025)],
    ['a//b'],
    ['a/./b'],
    ['../etc'],
    ['a/'],
    ['a/#'],
    ['a/+/b'],
    ['a\u0000b'],
    ['tab\there'],
  ])('refuses %j', (topic) => {
    expect(refusalOf(() => checkTopic(topic))).toMatchObject({ error: 'invalid_id', field: 'id', statusCode: 400 });
  });

  it('checks the payload of a write against the size and depth limits', () => {
    expect(() => checkTopicWrite('a/b', { state: 'running' })).not.toThrow();
    expect(() => checkTopicWrite('a/b', 'Hello')).not.toThrow();
    expect(refusalOf(() => checkTopicWrite('a/b', 'x'.repeat(70_000)))).toMatchObject({
      error: 'payload_too_large',
      statusCode: 413,
    });
  });
});
