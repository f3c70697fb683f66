/**
 * Types for the parts of Harper 4.7 we use that its own declarations do not describe.
 *
 * Harper's .d.ts files describe the newer resource style (`loadAsInstance = false`, instance
 * methods taking `(target, data)`). Our resources use the default instance-binding style, where
 * instance methods take `(data, target)` and `this.getId()` is the id from the topic or path
 * (see lib/resources/sensors.ts for why). `tables.<name>` is untyped per table, so this module declares the
 * shape we rely on once, instead of casting at every call.
 */
import type { RequestTarget, User } from 'harperdb';

export type { RequestTarget, User };

/** The request (REST/SSE/WebSocket) or MQTT session context a resource method runs in. */
export interface HarperContext {
  user?: User;
  [key: string]: unknown;
}

/** The signed-in user a resource method runs for (undefined for an anonymous client). */
export function userOf(resource: { getContext(): unknown }): User | undefined {
  return (resource.getContext() as HarperContext | undefined)?.user;
}

/** A resource instance bound to one id (or to the collection, when the id is null). */
export interface InstanceBoundResource {
  getId(): string | number | null | undefined;
  getContext(): HarperContext | undefined;
  put(data: unknown, target?: RequestTarget): unknown;
  patch(data: unknown, target?: RequestTarget): unknown;
  post(data: unknown, target?: RequestTarget): unknown;
  publish(message: unknown, target?: RequestTarget): unknown;
  /** Resolves to the subscription for SSE/WebSocket (a promise in this style). */
  connect(incoming: unknown, target?: RequestTarget): AsyncIterable<unknown> | Promise<AsyncIterable<unknown>>;
  subscribe(request?: unknown): unknown;
  search(query?: unknown): unknown;
  allowRead(user: User | undefined, target?: RequestTarget, context?: unknown): unknown;
  allowCreate(user: User | undefined, data: unknown, context?: unknown): unknown;
  allowUpdate(user: User | undefined, data: unknown, context?: unknown): unknown;
  allowDelete(user: User | undefined, target?: RequestTarget, context?: unknown): unknown;
}

/** The static side of a table class: what REST, MQTT and our own code call. */
export interface InstanceBoundTableClass<Row> {
  new (...args: never[]): InstanceBoundResource;
  get(id: string, context?: unknown): Promise<Row | undefined>;
  put(...args: unknown[]): Promise<unknown>;
  patch(...args: unknown[]): Promise<unknown>;
  post(...args: unknown[]): Promise<unknown>;
  publish(...args: unknown[]): unknown;
  parsePath(path: unknown, ...rest: unknown[]): unknown;
}

/**
 * Harper's `transaction(context, callback)`: writes made with `context` inside the callback commit
 * together, after it returns (a context whose transaction is open joins it instead). The package
 * exports it, but its type declarations do not, and it is attached to the exports after our
 * module is imported, so it is looked up on the first call and kept: resolving the package again
 * on every call was a tenth of the write path's CPU time.
 */
import { createRequire } from 'node:module';
type TransactionFunction = <T>(context: HarperContext, callback: () => Promise<T>) => Promise<T>;
let harperTransaction: TransactionFunction | undefined;
export function transaction<T>(context: HarperContext, callback: () => Promise<T>): Promise<T> {
  harperTransaction ??= (createRequire(import.meta.url)('harperdb') as { transaction: TransactionFunction })
    .transaction;
  return harperTransaction(context, callback);
}

/** Harper's methods (and ours that it calls) return either a value or a promise of one. */
export const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';
