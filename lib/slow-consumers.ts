/**
 * Subscribers that stop reading, or read slower than messages arrive, are cut off with a reason
 * instead of holding an unbounded backlog in server memory.
 *
 * Harper's writers pull the next event from a subscription only once the client's socket has
 * drained (WebSocket, SSE) or its QoS 1 acknowledgements are back (MQTT); until then events queue
 * inside the subscription (its `queue` array), without a bound: three stalled subscribers of
 * 16 KiB messages at 500 msg/s added about 200 MB of server memory in 8 s, growing with every
 * message. A watchdog looks at each subscription once a second and cuts it off when its live
 * backlog exceeds MAX_BACKLOG events, when the oldest waiting live event is older than
 * MAX_LAG_MS, or when the MQTT socket holds more than MAX_SOCKET_BYTES unsent.
 *
 * Cutting off drops the backlog and ends the subscription. The client learns why: WebSocket and
 * SSE get a last event `{"type":"error","value":{"error":"slow_consumer",...}}` and the stream
 * ends; an MQTT connection is closed (Harper sends no DISCONNECT reason). A client that resumes
 * loses nothing: WebSocket and SSE with `?startTime=<last localTime>`, MQTT by reconnecting its
 * durable session (`clean: false`).
 *
 * Replayed events (`startTime`, `previousCount`) are older than the subscription and arrive all
 * at once; they are not counted, so a client resuming after a long absence is not cut off for it.
 */
import { Refusal } from './errors.js';

/** Live events that may wait for one subscriber. */
const MAX_BACKLOG = Number(process.env.SUBSCRIBER_MAX_BACKLOG ?? 2_000);
/** How long (ms) a live event may wait for one subscriber. */
const MAX_LAG_MS = Number(process.env.SUBSCRIBER_MAX_LAG_MS ?? 10_000);
/** Bytes an MQTT subscriber's socket may hold unsent (QoS 0 deliveries do not wait for it). */
const MAX_SOCKET_BYTES = 8 * 1024 * 1024;
const CHECK_EVERY_MS = 1_000;

interface SubscriptionEvent {
  localTime?: number;
  type?: string;
}

export interface Closable {
  destroy?(error?: Error): unknown;
  end?(): unknown;
  writableLength?: number;
}

/** Harper's subscription: an async iterable event queue (IterableEventQueue in Harper 4.7). */
type Subscription<T> = AsyncIterable<T> & {
  queue?: T[];
  send?(event: T): unknown;
  on?(event: 'close', listener: () => void): unknown;
  end?(): unknown;
  return?(value?: unknown): unknown;
};
export type Watchable = Subscription<SubscriptionEvent>;

/** Index of the first live event (sent at or after `since`) in a queue ordered by time. */
function firstLive(queue: SubscriptionEvent[], since: number): number {
  let low = 0;
  let high = queue.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    const time = queue[middle]?.localTime;
    if (typeof time === 'number' && time < since) low = middle + 1;
    else high = middle;
  }
  return low;
}

function slowConsumerError(why: string): Refusal {
  return new Refusal({
    error: 'slow_consumer',
    message: `this subscriber fell too far behind (${why}) and was cut off; resume with ?startTime=<last localTime> (MQTT: reconnect with clean: false) to get what it missed`,
  });
}

/** Marks the event `endAll` queues to wake a waiting consumer; never sent to a client. */
const FAREWELL = Symbol('farewell');

/** Every subscription being watched on this thread, with how to end it (see `endAll`). */
const live = new Set<(final: RefusalLike) => void>();

type RefusalLike = ReturnType<Refusal['toJSON']>;

/**
 * Ends every subscription on this thread: WebSocket and SSE subscribers get `final` as their last
 * event, `{"type":"error","value":final}`; MQTT connections are closed (ended, not reset).
 */
export function endAll(final: RefusalLike): void {
  for (const end of [...live]) end(final);
}

/**
 * Wraps a subscription. `socket` is the MQTT connection's socket (closed when the subscriber is
 * cut off); WebSocket and SSE end with an error event instead.
 */
export function watchConsumer<T extends SubscriptionEvent>(subscription: Subscription<T>, socket?: Closable): Subscription<T> {
  const inner = subscription[Symbol.asyncIterator]();
  const subscribedAt = Date.now();
  let reason: string | undefined;
  let finished = false;

  const cutOff = (why: string): void => {
    if (reason || finished) return;
    reason = why;
    clearInterval(watchdog);
    live.delete(endNow);
    if (subscription.queue) subscription.queue.length = 0; // the backlog is what we are freeing
    void inner.return?.();
    if (socket) {
      console.warn(`slow consumer: MQTT subscriber cut off (${why}); closing its connection`);
      socket.destroy ? socket.destroy() : socket.end?.();
    }
  };

  const watchdog = setInterval(() => {
    if ((socket?.writableLength ?? 0) > MAX_SOCKET_BYTES) return cutOff(`${socket!.writableLength} bytes unsent`);
    const queue = subscription.queue;
    if (!queue || queue.length === 0) return;
    const firstLiveIndex = firstLive(queue, subscribedAt);
    const backlog = queue.length - firstLiveIndex;
    if (backlog > MAX_BACKLOG) return cutOff(`${backlog} events waiting (limit ${MAX_BACKLOG})`);
    const oldest = queue[firstLiveIndex]?.localTime;
    if (typeof oldest === 'number' && Date.now() - oldest > MAX_LAG_MS) cutOff(`${Math.round((Date.now() - oldest) / 1000)} s behind (limit ${MAX_LAG_MS / 1000} s)`);
  }, CHECK_EVERY_MS);
  watchdog.unref();

  /** The last event for WebSocket and SSE subscribers, when the server ends the subscription. */
  let farewell: RefusalLike | undefined;
  const endNow = (final: RefusalLike): void => {
    if (finished || farewell) return;
    farewell = final;
    if (socket) {
      socket.end ? socket.end() : socket.destroy?.();
      return;
    }
    // Wakes a consumer waiting for the next event, or queues behind what it has not read yet.
    subscription.send?.({ [FAREWELL]: true } as unknown as T);
  };
  live.add(endNow);
  // Harper closes a subscription (its `close` event) when the client goes away: stop watching it.
  // (A cut-off closes it too, but its last event is still to be handed over by `next`.)
  subscription.on?.('close', () => {
    if (!reason) finish();
  });

  const finish = (): IteratorResult<T> => {
    finished = true;
    clearInterval(watchdog);
    live.delete(endNow);
    return { done: true, value: undefined };
  };

  const iterator: AsyncIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      if (finished) return { done: true, value: undefined };
      if (reason) {
        finish();
        return { done: false, value: { type: 'error', value: slowConsumerError(reason).toJSON() } as unknown as T };
      }
      const result = await inner.next();
      if (result.done) return finish();
      if (farewell && (result.value as Record<symbol, unknown>)?.[FAREWELL]) {
        finish();
        return { done: false, value: { type: 'error', value: farewell } as unknown as T };
      }
      // Cut off while this call waited: the event it got is dropped with the rest of the backlog.
      return reason ? iterator.next() : result;
    },
    async return(value?: unknown): Promise<IteratorResult<T>> {
      finish();
      await inner.return?.(value);
      return { done: true, value: undefined };
    },
  };

  return Object.assign(Object.create(subscription) as Subscription<T>, {
    [Symbol.asyncIterator]: () => iterator,
    end() {
      finish();
      subscription.end?.();
    },
    return: iterator.return,
  });
}
