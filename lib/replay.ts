/**
 * Replay and resume for subscriptions: `?startTime=<ms>` (every event after that time, in order)
 * or `?previousCount=<n>` (the last n events, at most 1000), on SSE and WebSocket URLs and on MQTT
 * topics (`sensors/101?startTime=...`).
 *
 * Harper's subscriptions support both, fed by the audit log, but it does not take them from the
 * URL or the topic itself, so `subscribe` overrides copy them across with this function. The
 * start time is exclusive: a client that reconnects with the last `localTime` it saw receives
 * every later event, in order, without a duplicate. The audit log is kept for 3 days by default
 * (Harper's logging.auditRetention), which bounds how far back a replay reaches.
 */
import { Refusal } from './errors.js';

export interface ReplayOptions {
  startTime?: number;
  previousCount?: number;
  /** With startTime: no current-state event (a record-level resume would repeat the last one seen). */
  omitCurrent?: boolean;
}

/** The subscription request as each protocol hands it over. */
interface SubscriptionRequestLike {
  /** SSE and WebSocket: the URL's query as a RequestTarget (URLSearchParams). */
  get?: (name: string) => string | null;
  /** MQTT: the topic's query string, e.g. "?startTime=1700000000000". */
  search?: string;
  startTime?: number;
  previousCount?: number;
}

const MAX_PREVIOUS = 1000;

function parameters(request: SubscriptionRequestLike): { startTime: string | null; previousCount: string | null } {
  if (typeof request.get === 'function') return { startTime: request.get('startTime'), previousCount: request.get('previousCount') };
  const query = new URLSearchParams(typeof request.search === 'string' ? request.search.replace(/^\?/, '') : '');
  return { startTime: query.get('startTime'), previousCount: query.get('previousCount') };
}

/** Reads and checks the replay parameters; refuses malformed ones (400 / SUBACK error). */
export function replayOptions(request: unknown): ReplayOptions | undefined {
  if (request === null || typeof request !== 'object') return undefined;
  const { startTime, previousCount } = parameters(request as SubscriptionRequestLike);
  if (startTime === null && previousCount === null) return undefined;
  if (startTime !== null && previousCount !== null) {
    throw new Refusal({ error: 'invalid_query', field: 'startTime', message: 'use startTime or previousCount, not both' });
  }
  if (startTime !== null) {
    const value = Number(startTime);
    if (startTime.trim() === '' || !Number.isFinite(value) || value < 0) {
      throw new Refusal({ error: 'invalid_query', field: 'startTime', rule: 'milliseconds since the epoch', message: 'startTime must be milliseconds since the epoch' });
    }
    // Harper's record-level replay sends the current state after the history unless told not to;
    // when nothing was missed that is the very event the client saw last, a duplicate.
    return { startTime: value, omitCurrent: true };
  }
  const count = Number(previousCount);
  if (!Number.isInteger(count) || count < 1 || count > MAX_PREVIOUS) {
    throw new Refusal({ error: 'invalid_query', field: 'previousCount', rule: `an integer from 1 to ${MAX_PREVIOUS}`, message: `previousCount must be an integer from 1 to ${MAX_PREVIOUS}` });
  }
  return { previousCount: count };
}

/** Applies replay parameters from the URL or topic to the subscription request Harper will use. */
export function withReplay<T>(request: T): T {
  const options = replayOptions(request);
  if (options) Object.assign(request as object, options);
  return request;
}
