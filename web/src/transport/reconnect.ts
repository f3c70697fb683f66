/**
 * When a dropped connection is tried again, for every transport of the dashboard: exponential
 * back-off with jitter, back to the shortest wait once a connection works, and no retry at all
 * after a refusal that a retry would meet again (credentials or rights). No DOM: the unit tests
 * import this file as it is.
 */

export interface BackoffPolicy {
  /** The wait before the first retry after a connection that worked, in ms. */
  firstMs: number;
  /** The longest wait, in ms. */
  maxMs: number;
  /**
   * The share of each wait taken off at random (0: none, 0.5: up to half), so that pages that lost
   * the server together do not all come back in the same instant.
   */
  jitter: number;
}

export const BACKOFF: BackoffPolicy = { firstMs: 500, maxMs: 15_000, jitter: 0.5 };

/**
 * The wait before retry number `attempt` (0 for the first retry after a connection that worked):
 * `firstMs` doubled per attempt up to `maxMs`, less up to `jitter` of it. `random` is in [0, 1).
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.firstMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(ceiling * (1 - policy.jitter * random()));
}

/** A wait in ms as the status line says it: seconds with one decimal. */
export function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/** One transport's retries: the transport says how each connection ended, this decides when to connect again. */
export class Reconnect {
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    /** Opens the next connection when a wait is over. */
    private readonly connect: () => void,
    private readonly policy: BackoffPolicy = BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Connections that failed or dropped since the last one that worked. */
  get attempts(): number {
    return this.failures;
  }

  /** Whether a retry is waiting for its time. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** The connection works: the next failure waits the shortest time again. */
  succeeded(): void {
    this.failures = 0;
  }

  /** The connection failed or dropped and a retry may help: connects again after the back-off; returns the wait in ms. */
  failed(): number {
    this.cancel();
    const delay = backoffDelay(this.failures, this.policy, this.random);
    this.failures++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
    return delay;
  }

  /**
   * Refused for want of credentials or rights: a retry would be refused again, so none is made. The
   * transport connects again only when told to (new credentials, the user's "Reconnect").
   */
  refused(): void {
    this.reset();
  }

  /** Before connecting at once by request: no retry waiting, and the back-off starts over. */
  reset(): void {
    this.cancel();
    this.failures = 0;
  }

  /** No retry (the transport stops). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
