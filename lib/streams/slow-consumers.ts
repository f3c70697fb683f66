/**
 * Subscribers that stop taking their events are cut off with a reason, instead of holding an
 * unbounded backlog in server memory; and every subscription of a thread can be ended with a
 * last event when the server stops (`endAll`, used by lib/resources/server-notice.ts).
 *
 * Harper's writers pull the next event from a subscription only once the client's socket has
 * drained (WebSocket, SSE) or enough of its QoS 1 acknowledgements are back (MQTT); until then
 * events queue inside the subscription (its `queue` array), without a bound: three stalled
 * subscribers of 16 KiB messages at 500 msg/s added about 200 MB of server memory in 8 s.
 *
 * The judgement is about the subscriber, never about the server. A server that is behind (a
 * burst, a busy thread) still hands every subscriber its next event as fast as it can, so each
 * subscription's queue keeps moving however long it is; only a subscriber whose socket does not
 * drain or whose acknowledgements do not come back stops its queue. A watchdog looks at every
 * subscription once a second and cuts it off when
 * - its consumer took no event since the last look while more than MAX_BACKLOG live events wait,
 *   or took none for MAX_STALL_MS while any wait;
 * - (MQTT) it took some, but more than MAX_BACKLOG wait while the client holds Harper's maximum
 *   of unacknowledged QoS 1 messages (its acknowledgements are what is missing);
 * - (MQTT) its socket holds more than MAX_SOCKET_BYTES unsent (QoS 0 deliveries do not wait);
 * - more than HARD_BACKLOG live events wait, whatever the reason: a memory bound of last resort,
 *   far beyond anything a server that keeps up with its load builds.
 *
 * Cutting off drops the backlog and ends the subscription. The client learns why: WebSocket and
 * SSE get a last event `{"type":"error","value":{"error":"slow_consumer",...}}` and the stream
 * ends; an MQTT connection is closed (Harper sends no DISCONNECT reason). A client that resumes
 * loses nothing: WebSocket and SSE with `?startTime=<last localTime>`, MQTT by reconnecting its
 * durable session (`clean: false`).
 *
 * Replayed events (`startTime`, `previousCount`) are older than the subscription and arrive all
 * at once; they are not counted, so a client resuming after a long absence is not cut off for it.
 *
 * Nothing here runs per live event: the subscription's iterator hands Harper's results straight
 * through (only the events a new subscription sends before its first live one are looked at, for
 * lib/mqtt/deliveries.ts), and the watchdog reads the queue Harper keeps anyway.
 */
import { Refusal } from '../rules/errors.js';
import { addSubscribers, countCutoff, type CutoffReason, type StreamProtocol } from '../metrics/counters.js';

/** Live events that may wait for a subscriber that is not taking them. */
const MAX_BACKLOG = Number(process.env.SUBSCRIBER_MAX_BACKLOG ?? 2_000);
/** How long (ms) a subscriber may take nothing while events wait for it. */
const MAX_STALL_MS = Number(process.env.SUBSCRIBER_MAX_STALL_MS ?? 10_000);
/** Live events that may wait for one subscriber, at most, for any reason. */
const HARD_BACKLOG = Number(process.env.SUBSCRIBER_HARD_BACKLOG ?? 50_000);
/** Bytes an MQTT subscriber's socket may hold unsent (QoS 0 deliveries do not wait for it). */
const MAX_SOCKET_BYTES = 8 * 1024 * 1024;
/** Unacknowledged QoS 1 messages at which Harper 4.7 slows delivery to an MQTT client. */
const HARPER_ACK_WINDOW = 100;
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

/** What the watchdog reads of an MQTT connection: Harper's session and its socket. */
export interface MqttConnection {
  socket?: Closable;
  session?: { awaitingAcks?: { size: number } };
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

type RefusalLike = ReturnType<Refusal['toJSON']>;

/** One watched subscription: what the watchdog looks at, and how to end it. */
interface Watched {
  /** Looks at the subscription, and cuts it off if its subscriber is the reason it is behind. */
  inspect(now: number): void;
  end(final: RefusalLike): void;
  /** Counted among the current subscribers of this protocol while watched (lib/metrics/counters.ts). */
  protocol?: StreamProtocol;
}

/** Every subscription being watched on this thread. */
const watched = new Set<Watched>();
let watchdog: NodeJS.Timeout | undefined;

function watch(entry: Watched): void {
  watched.add(entry);
  if (entry.protocol) addSubscribers(entry.protocol, 1);
  if (!watchdog) {
    watchdog = setInterval(() => {
      const now = Date.now();
      for (const item of watched) item.inspect(now);
    }, CHECK_EVERY_MS);
    watchdog.unref();
  }
}

function unwatch(entry: Watched): void {
  if (watched.delete(entry) && entry.protocol) addSubscribers(entry.protocol, -1);
  if (watched.size === 0 && watchdog) {
    clearInterval(watchdog);
    watchdog = undefined;
  }
}

/**
 * Ends every subscription on this thread: WebSocket and SSE subscribers get `final` as their last
 * event, `{"type":"error","value":final}`; MQTT connections are closed (ended, not reset).
 */
export function endAll(final: RefusalLike): void {
  for (const entry of [...watched]) entry.end(final);
}

/**
 * Watches a subscription and returns it to be handed to Harper. `mqtt` is the MQTT connection it
 * belongs to (closed when the subscriber is cut off); WebSocket and SSE end with an error event.
 */
export function watchConsumer<T extends SubscriptionEvent>(
  subscription: Subscription<T>,
  mqtt?: MqttConnection,
  options: {
    /** Sees each event the subscription sends before its first live one (its current state). */
    beforeLive?: (event: T) => void;
    /** When the client asked to subscribe (default: now); older events are not live. */
    subscribedAt?: number;
    /** The protocol it is delivered over, for the subscriber count of /metrics. */
    protocol?: StreamProtocol;
  } = {},
): Subscription<T> {
  const inner = subscription[Symbol.asyncIterator]();
  const socket = mqtt?.socket;
  const subscribedAt = options.subscribedAt ?? Date.now();
  const DONE: IteratorResult<T> = { done: true, value: undefined };
  /** The last event (a cut-off's, or the server's when it stops), then the end. */
  let final: T | undefined;
  /** Whether `final` went through the queue (the server's notice) rather than waiting here. */
  let finalQueued = false;
  let finished = false;
  let lastHead: T | undefined;
  let beforeLive = options.beforeLive;
  let stalledSince: number | undefined;

  const finish = (): void => {
    finished = true;
    unwatch(entry);
  };

  const cutOff = (why: string, reason: CutoffReason): void => {
    countCutoff(reason);
    unwatch(entry);
    if (subscription.queue) subscription.queue.length = 0; // the backlog is what we are freeing
    if (socket) {
      console.warn(`slow consumer: MQTT subscriber cut off (${why}); closing its connection`);
      void inner.return?.();
      if (socket.destroy) socket.destroy();
      else socket.end?.();
      return;
    }
    // Set before the queue is closed (closing it stops the watch): the consumer, which is not
    // waiting for an event since its queue was not empty, gets this one next, then the end.
    final = { type: 'error', value: slowConsumerError(why).toJSON() } as unknown as T;
    void inner.return?.();
  };

  const entry: Watched = {
    protocol: options.protocol,
    inspect(now) {
      if (finished || final) return;
      if ((socket?.writableLength ?? 0) > MAX_SOCKET_BYTES)
        return cutOff(`${socket!.writableLength} bytes unsent`, 'socket_buffer');
      const queue = subscription.queue;
      if (!queue || queue.length === 0) {
        lastHead = undefined;
        stalledSince = undefined;
        return;
      }
      const head = queue[0];
      const tookNone = head === lastHead;
      lastHead = head;
      if (!tookNone) stalledSince = undefined;
      else stalledSince ??= now - CHECK_EVERY_MS;
      const backlog = queue.length - firstLive(queue, subscribedAt);
      if (backlog === 0) return;
      if (backlog > HARD_BACKLOG) return cutOff(`${backlog} events waiting (limit ${HARD_BACKLOG})`, 'hard_backlog');
      if (tookNone && backlog > MAX_BACKLOG)
        return cutOff(`${backlog} events waiting and none taken (limit ${MAX_BACKLOG})`, 'backlog_not_taken');
      if (stalledSince !== undefined && now - stalledSince >= MAX_STALL_MS)
        return cutOff(`nothing taken for ${Math.round((now - stalledSince) / 1000)} s`, 'stalled');
      const unacknowledged = mqtt?.session?.awaitingAcks?.size ?? 0;
      if (unacknowledged >= HARPER_ACK_WINDOW && backlog > MAX_BACKLOG)
        return cutOff(`${backlog} events waiting for ${unacknowledged} QoS 1 acknowledgements`, 'acknowledgements');
    },
    end(last) {
      if (finished || final) return;
      unwatch(entry);
      if (socket) {
        if (socket.end) socket.end();
        else socket.destroy?.();
        return;
      }
      // Queued behind what the client has not read yet, or handed straight to a waiting consumer.
      final = { type: 'error', value: last } as unknown as T;
      finalQueued = true;
      subscription.send?.(final);
    },
  };
  watch(entry);
  // Harper closes a subscription (its `close` event) when the client goes away: stop watching it.
  subscription.on?.('close', () => {
    if (!final) finish();
  });

  const iterator: AsyncIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (finished) return Promise.resolve(DONE);
      if (final !== undefined) {
        if (!finalQueued) {
          finish();
          return Promise.resolve({ done: false, value: final });
        }
        // The server's notice was queued or handed straight to a waiting consumer: end once it
        // is no longer in the queue.
        if (!subscription.queue?.includes(final)) {
          finish();
          return Promise.resolve(DONE);
        }
      }
      if (!beforeLive) return inner.next() as Promise<IteratorResult<T>>;
      // Only until the first live event: from then on events are handed through untouched.
      return Promise.resolve(inner.next()).then((result) => {
        const event = result.done ? undefined : result.value;
        if (event && typeof event.localTime === 'number' && event.localTime < subscribedAt) beforeLive?.(event);
        else beforeLive = undefined;
        return result;
      });
    },
    async return(value?: unknown): Promise<IteratorResult<T>> {
      finish();
      await inner.return?.(value);
      return DONE;
    },
  };

  const send = subscription.send;
  return Object.assign(Object.create(subscription) as Subscription<T>, {
    [Symbol.asyncIterator]: () => iterator,
    // Harper's queue methods must run on the queue itself, not on this wrapper.
    send: send ? (event: T) => send.call(subscription, event) : undefined,
    end() {
      finish();
      subscription.end?.();
    },
    return: iterator.return,
  });
}
