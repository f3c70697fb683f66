/**
 * The dashboard transports' pure parts, without a browser or Harper: the back-off every transport
 * reconnects with (web/src/transport/reconnect.ts) and the gap-free resume of SSE and WebSocket
 * (web/src/transport/resume.ts).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BACKOFF, Reconnect, backoffDelay, seconds } from '../../web/src/transport/reconnect.js';
import { ResumePoint } from '../../web/src/transport/resume.js';

const noJitter = () => 0;
/** The largest value Math.random() can return. */
const mostJitter = () => 1 - Number.EPSILON;

describe('backoffDelay', () => {
  it('doubles from the first wait up to the longest, without jitter', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((attempt) => backoffDelay(attempt, BACKOFF, noJitter))).toEqual([
      500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000,
    ]);
  });

  it('takes off at most the jitter share, at random', () => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const ceiling = backoffDelay(attempt, BACKOFF, noJitter);
      expect(backoffDelay(attempt, BACKOFF, mostJitter)).toBe(Math.round(ceiling * (1 - BACKOFF.jitter)));
      for (let draw = 0; draw < 20; draw++) {
        const delay = backoffDelay(attempt, BACKOFF);
        expect(delay).toBeGreaterThanOrEqual(Math.round(ceiling * (1 - BACKOFF.jitter)));
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('stays finite for any attempt count, and treats a negative one as the first', () => {
    expect(backoffDelay(10_000, BACKOFF, noJitter)).toBe(BACKOFF.maxMs);
    expect(backoffDelay(-3, BACKOFF, noJitter)).toBe(BACKOFF.firstMs);
    expect(backoffDelay(3, { firstMs: 100, maxMs: 60_000, jitter: 0 })).toBe(800);
  });

  it('is said in seconds with one decimal', () => {
    expect([500, 1000, 1234, 15_000].map(seconds)).toEqual(['0.5', '1', '1.2', '15']);
  });
});

describe('Reconnect', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('connects again after each wait, longer after each failure', () => {
    const connect = vi.fn();
    const reconnect = new Reconnect(connect, BACKOFF, noJitter);
    expect(reconnect.failed()).toBe(500);
    expect(reconnect.pending).toBe(true);
    vi.advanceTimersByTime(499);
    expect(connect).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(connect).toHaveBeenCalledTimes(1);
    expect(reconnect.pending).toBe(false);
    expect([reconnect.failed(), reconnect.attempts]).toEqual([1000, 2]);
    vi.advanceTimersByTime(1000);
    expect(connect).toHaveBeenCalledTimes(2);
  });

  it('starts over from the shortest wait once a connection works', () => {
    const reconnect = new Reconnect(() => undefined, BACKOFF, noJitter);
    reconnect.failed();
    reconnect.failed();
    reconnect.failed();
    reconnect.succeeded();
    expect(reconnect.attempts).toBe(0);
    expect(reconnect.failed()).toBe(500);
  });

  it('keeps one retry waiting at most: a second failure replaces the first', () => {
    const connect = vi.fn();
    const reconnect = new Reconnect(connect, BACKOFF, noJitter);
    reconnect.failed();
    reconnect.failed();
    vi.advanceTimersByTime(60_000);
    expect(connect).toHaveBeenCalledTimes(1);
  });

  it('makes no retry after a refusal, nor after cancel', () => {
    const connect = vi.fn();
    const refused = new Reconnect(connect, BACKOFF, noJitter);
    refused.failed();
    refused.failed();
    refused.refused();
    expect([refused.pending, refused.attempts]).toEqual([false, 0]);
    const stopped = new Reconnect(connect, BACKOFF, noJitter);
    stopped.failed();
    stopped.cancel();
    vi.advanceTimersByTime(60_000);
    expect(connect).not.toHaveBeenCalled();
  });

  it('reset drops the waiting retry and the back-off, for a connection made at once', () => {
    const connect = vi.fn();
    const reconnect = new Reconnect(connect, BACKOFF, noJitter);
    reconnect.failed();
    reconnect.failed();
    reconnect.reset();
    vi.advanceTimersByTime(60_000);
    expect(connect).not.toHaveBeenCalled();
    expect(reconnect.failed()).toBe(500);
  });
});

describe('ResumePoint', () => {
  const frame = (localTime: number | undefined, type = 'put') =>
    JSON.stringify({
      id: '101',
      type,
      value: { id: '101', temperature: 20 },
      ...(localTime === undefined ? {} : { localTime }),
    });

  it('asks for the first query until an event was seen, then resumes after the last one', () => {
    const resume = new ResumePoint();
    expect(resume.query()).toBe('');
    expect(resume.query({ startTime: '1000' })).toBe('?startTime=1000');
    resume.opened();
    expect(resume.read(frame(1500)).kind).toBe('event');
    expect(resume.read(frame(1400)).kind).toBe('event');
    expect(resume.lastLocalTime).toBe(1500);
    expect(resume.query({ startTime: '1000' })).toBe('?startTime=1500');
  });

  it('drops what a resumed connection sends again, and only that', () => {
    const resume = new ResumePoint();
    resume.opened();
    resume.read(frame(2000));
    resume.opened();
    const again = resume.read(frame(2000));
    expect(again.kind).toBe('repeat');
    expect(resume.read(frame(1999)).kind).toBe('repeat');
    expect(resume.read(frame(2001)).kind).toBe('event');
    expect(resume.repeatsDropped).toBe(2);
    expect(resume.lastLocalTime).toBe(2001);
  });

  it('delivers a frame without localTime without moving the resume point', () => {
    const resume = new ResumePoint();
    resume.opened();
    resume.read(frame(3000));
    resume.opened();
    const reading = resume.read(frame(undefined, 'message'));
    expect(reading.kind).toBe('event');
    expect(resume.lastLocalTime).toBe(3000);
  });

  it("tells the server's end of a subscription from replies to writes and from what is not a frame", () => {
    const resume = new ResumePoint();
    const error = (value: unknown) => JSON.stringify({ type: 'error', value });
    expect(resume.read(error({ error: 'slow_consumer' }))).toEqual({ kind: 'ended', reason: 'slow_consumer' });
    expect(resume.read(error({ error: 'server_shutting_down' }))).toEqual({
      kind: 'ended',
      reason: 'server_shutting_down',
    });
    expect(resume.read(error({ error: 'forbidden', message: 'no' })).kind).toBe('other');
    expect(resume.read(JSON.stringify({ type: 'ack', id: '101' })).kind).toBe('other');
    for (const data of ['', 'not json', 'null', '42', '"text"']) expect(resume.read(data).kind, data).toBe('other');
    expect(resume.lastLocalTime).toBeUndefined();
  });
});
