/**
 * The slow-consumer watchdog (lib/streams/slow-consumers.ts) on stand-in subscriptions, with the clock
 * and the watchdog's interval driven by the test: who is cut off, when, and what they are told.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { endAll, watchConsumer, type MqttConnection } from '../../lib/streams/slow-consumers.js';

interface Event {
  localTime?: number;
  type?: string;
  value?: unknown;
}

const START = 1_000_000;
/** The defaults (env SUBSCRIBER_MAX_BACKLOG, SUBSCRIBER_MAX_STALL_MS). */
const MAX_BACKLOG = 2_000;

/** A stand-in for Harper's subscription queue: events wait in `queue` until the consumer pulls. */
function subscription(events: Event[]) {
  const queue = [...events];
  const waiting: ((result: IteratorResult<Event>) => void)[] = [];
  const done: IteratorResult<Event> = { done: true, value: undefined };
  return {
    queue,
    send(event: Event) {
      const consumer = waiting.shift();
      if (consumer) consumer({ done: false, value: event });
      else queue.push(event);
    },
    [Symbol.asyncIterator]: () => ({
      next: () =>
        queue.length > 0
          ? Promise.resolve({ done: false, value: queue.shift()! })
          : new Promise<IteratorResult<Event>>((resolve) => waiting.push(resolve)),
      return: () => {
        for (const consumer of waiting.splice(0)) consumer(done);
        return Promise.resolve(done);
      },
    }),
  };
}

/** `count` live events (sent after the subscription began), or replayed ones (sent before). */
const live = (count: number): Event[] =>
  Array.from({ length: count }, (_, i) => ({ localTime: START + 1 + i, type: 'put' }));
const replayed = (count: number): Event[] =>
  Array.from({ length: count }, (_, i) => ({ localTime: START - count + i, type: 'put' }));

async function secondsPass(seconds: number, each?: () => Promise<void>): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    await each?.();
    await vi.advanceTimersByTimeAsync(1_000);
  }
}

const isCutOff = (event: Event | undefined) =>
  event?.type === 'error' && (event.value as { error?: string }).error === 'slow_consumer';

beforeEach(() => {
  vi.useFakeTimers({ now: START });
});

afterEach(() => {
  endAll({ error: 'server_shutting_down', message: 'test over' });
  vi.useRealTimers();
});

describe('slow consumers', () => {
  it('leaves a subscriber that keeps taking events alone, however far the server is behind', async () => {
    const inner = subscription(live(3 * MAX_BACKLOG));
    const events = watchConsumer(inner)[Symbol.asyncIterator]();
    await secondsPass(20, async () => void (await events.next()));
    const next = await events.next();
    expect(isCutOff(next.value)).toBe(false);
    expect(inner.queue.length).toBeGreaterThan(MAX_BACKLOG);
  });

  it('cuts off one that takes nothing while more than the backlog limit waits: the backlog dropped, the reason last, then the end', async () => {
    const inner = subscription(live(MAX_BACKLOG + 1));
    const events = watchConsumer(inner)[Symbol.asyncIterator]();
    await secondsPass(2);
    expect(inner.queue).toHaveLength(0);
    const last = await events.next();
    expect(isCutOff(last.value)).toBe(true);
    expect((last.value as Event).value).toMatchObject({ message: expect.stringContaining('none taken') });
    expect(await events.next()).toEqual({ done: true, value: undefined });
  });

  it('does not count replayed events: a client resuming after a long absence is not cut off', async () => {
    const inner = subscription(replayed(3 * MAX_BACKLOG));
    const events = watchConsumer(inner)[Symbol.asyncIterator]();
    await secondsPass(30);
    expect(inner.queue).toHaveLength(3 * MAX_BACKLOG);
    expect(isCutOff((await events.next()).value)).toBe(false);
  });

  it('cuts off one that takes nothing for the stall limit while even a few events wait', async () => {
    const inner = subscription(live(5));
    const events = watchConsumer(inner)[Symbol.asyncIterator]();
    await secondsPass(9);
    expect(inner.queue).toHaveLength(5);
    await secondsPass(3);
    const last = await events.next();
    expect(isCutOff(last.value)).toBe(true);
    expect((last.value as Event).value).toMatchObject({ message: expect.stringContaining('nothing taken for') });
  });

  it('closes an MQTT connection whose socket holds too much unsent', async () => {
    const socket = { writableLength: 8 * 1024 * 1024 + 1, destroy: vi.fn(), end: vi.fn() };
    watchConsumer(subscription([]), { socket });
    await secondsPass(1);
    expect(socket.destroy).toHaveBeenCalledOnce();
  });

  it('closes an MQTT connection that takes events but holds back its acknowledgements while the backlog grows', async () => {
    const socket = { writableLength: 0, destroy: vi.fn(), end: vi.fn() };
    const mqtt: MqttConnection = { socket, session: { awaitingAcks: { size: 100 } } };
    const events = watchConsumer(subscription(live(MAX_BACKLOG + 10)), mqtt)[Symbol.asyncIterator]();
    await secondsPass(1, async () => void (await events.next()));
    expect(socket.destroy).toHaveBeenCalledOnce();
  });

  it('ends every subscription at shutdown: the notice after what was queued, MQTT connections closed in order', async () => {
    const inner = subscription(live(2));
    const events = watchConsumer(inner)[Symbol.asyncIterator]();
    const socket = { writableLength: 0, destroy: vi.fn(), end: vi.fn() };
    watchConsumer(subscription([]), { socket });
    endAll({ error: 'server_shutting_down', message: 'stopping' });
    expect(socket.end).toHaveBeenCalledOnce();
    expect(socket.destroy).not.toHaveBeenCalled();
    const types = [];
    for (let next = await events.next(); !next.done; next = await events.next()) types.push(next.value.type);
    expect(types).toEqual(['put', 'put', 'error']);
  });
});
