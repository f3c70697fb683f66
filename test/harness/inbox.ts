/** What a subscriber received, in the same shape whatever the protocol. */
export interface Received {
  /** MQTT topic, or the SSE/WebSocket frame's record id. */
  topic?: string;
  id?: string;
  /** put | message | delete | patch (SSE/WebSocket frames), ack | error (WebSocket replies), publish (MQTT). */
  type: string;
  value: unknown;
  /** performance.now() when it arrived. */
  at: number;
  /** Harper's event time (SSE and WebSocket frames): the resume point for `?startTime=`. */
  localTime?: number;
}

/** An append-only list of received messages that tests can await instead of sleeping. */
export class Inbox {
  readonly items: Received[] = [];
  private waiters: { match: (item: Received) => boolean; resolve: (item: Received) => void }[] = [];

  push(item: Received): void {
    this.items.push(item);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.match(item)) return true;
      waiter.resolve(item);
      return false;
    });
  }

  /** The first message (already received or still to come) that matches. */
  waitFor(match: (item: Received) => boolean, timeoutMs = 5000, what = 'a matching message'): Promise<Received> {
    const found = this.items.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.resolve !== done);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; received ${this.items.length}: ${JSON.stringify(this.items.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      const done = (item: Received) => {
        clearTimeout(timer);
        resolve(item);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  /** Messages that match, in arrival order. */
  filter(match: (item: Received) => boolean): Received[] {
    return this.items.filter(match);
  }
}

/** The interface every protocol's subscriber offers (one file per transport). */
export interface Subscriber {
  readonly name: string;
  readonly inbox: Inbox;
  close(): Promise<void>;
}

/** Reads `field` of a received value when it is an object. */
export function valueField(item: Received, field: string): unknown {
  return item.value !== null && typeof item.value === 'object'
    ? (item.value as Record<string, unknown>)[field]
    : undefined;
}

/**
 * Waits until every subscriber is provably live: a canary (a non-retained publish: fanned out,
 * never stored) has reached each of them. A subscription is set up asynchronously after its
 * connection opens (and an SSE stream on an empty table does not even open until its first event),
 * so the canary is repeated until each subscriber has seen one.
 */
export async function untilLive(
  subscribers: Subscriber[],
  sendCanary: () => Promise<unknown>,
  isCanary: (item: Received) => boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = () => subscribers.filter((subscriber) => !subscriber.inbox.items.some(isCanary));
  while (pending().length > 0) {
    if (Date.now() > deadline)
      throw new Error(
        `not live after ${timeoutMs} ms: ${pending()
          .map((s) => s.name)
          .join(', ')}`,
      );
    await sendCanary();
    await Promise.all(pending().map((subscriber) => subscriber.inbox.waitFor(isCanary, 250).catch(() => undefined)));
  }
}
