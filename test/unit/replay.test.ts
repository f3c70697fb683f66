/** Replay parameters (lib/streams/replay.ts): read from URL or topic, checked, bounded. */
import { describe, expect, it } from 'vitest';
import { REPLAY_WINDOW_MS, replayOptions, TABLE_REPLAY_WINDOW_MS, withReplay } from '../../lib/streams/replay.js';
import { refusalOf } from './refusal.js';

const NOW = 1_800_000_000_000;
/** SSE and WebSocket hand over the URL's query; MQTT the topic's query string. */
const url = (query: string) => new URLSearchParams(query);
const topic = (search: string) => ({ search });

describe('replay parameters', () => {
  it('are absent without startTime or previousCount', () => {
    expect(replayOptions(url(''), false, NOW)).toBeUndefined();
    expect(replayOptions(topic(''), false, NOW)).toBeUndefined();
    expect(replayOptions(null, false, NOW)).toBeUndefined();
  });

  it('take startTime from a URL or a topic, without the current state (the client saw it)', () => {
    const startTime = NOW - 1_000;
    expect(replayOptions(url(`startTime=${startTime}`), false, NOW)).toEqual({ startTime, omitCurrent: true });
    expect(replayOptions(topic(`?startTime=${startTime}`), true, NOW)).toEqual({ startTime, omitCurrent: true });
  });

  it('bound startTime to the window of a record and, narrower, of a table', () => {
    expect(replayOptions(url(`startTime=${NOW - REPLAY_WINDOW_MS}`), false, NOW)).toMatchObject({
      startTime: NOW - REPLAY_WINDOW_MS,
    });
    expect(refusalOf(() => replayOptions(url(`startTime=${NOW - REPLAY_WINDOW_MS - 1}`), false, NOW))).toMatchObject({
      error: 'query_too_broad',
      field: 'startTime',
      rule: `at most ${REPLAY_WINDOW_MS} ms ago (not before ${NOW - REPLAY_WINDOW_MS})`,
    });
    expect(TABLE_REPLAY_WINDOW_MS).toBeLessThan(REPLAY_WINDOW_MS);
    expect(
      refusalOf(() => replayOptions(url(`startTime=${NOW - TABLE_REPLAY_WINDOW_MS - 1}`), true, NOW)),
    ).toMatchObject({ error: 'query_too_broad' });
    expect(refusalOf(() => replayOptions(url('startTime=0'), false, NOW))).toMatchObject({ error: 'query_too_broad' });
  });

  it.each([
    ['startTime='],
    ['startTime=abc'],
    ['startTime=-5'],
    ['previousCount=0'],
    ['previousCount=1001'],
    ['previousCount=2.5'],
    ['startTime=1&previousCount=1'],
  ])('refuses %s as invalid_query', (query) => {
    expect(refusalOf(() => replayOptions(url(query), false, NOW))).toMatchObject({
      error: 'invalid_query',
      statusCode: 400,
    });
  });

  it('take previousCount on a record only', () => {
    expect(replayOptions(url('previousCount=1000'), false, NOW)).toEqual({ previousCount: 1000 });
    expect(refusalOf(() => replayOptions(url('previousCount=5'), true, NOW))).toMatchObject({
      error: 'query_too_broad',
      field: 'previousCount',
    });
  });

  it('are copied onto the request Harper subscribes with', () => {
    const request = Object.assign(topic('?previousCount=3'), {} as { previousCount?: number });
    expect(withReplay(request)).toBe(request);
    expect(request.previousCount).toBe(3);
  });
});
