/**
 * What every exported table class of ours does at Harper's doors, written once:
 * - the permission hooks Harper calls before each read, subscription (incl. wildcards and replay),
 *   write and delete on any protocol, answered from the policy table in lib/access.ts;
 * - `?startTime=` / `?previousCount=` on every subscription (lib/replay.ts), and subscribers that
 *   fall too far behind cut off (lib/slow-consumers.ts);
 * - ids over the length limit refused in `parsePath`, and REST bodies checked before Harper parses
 *   them (lib/limits.ts);
 * - a WebSocket's writes bounded per connection (lib/websocket-writes.ts).
 * A resource class extends `guardedTable(tables.x, {...})` and adds only its own rules.
 */
import { authorize, type Resource } from './access.js';
import { checkPathLength, checkRequestBody } from './limits.js';
import { withReplay } from './replay.js';
import { watchConsumer, type Closable, type Watchable } from './slow-consumers.js';
import { bindIncomingSocket, type Pausable } from './websocket-writes.js';

function isPromise<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
import type { HarperContext, InstanceBoundTableClass, RequestTarget, User } from './harper-types.js';

export interface GuardOptions {
  /** Which row of the policy table applies. */
  resource: Resource;
  maxIdLength: number;
  /** The record the rights are about, from the id in the path or topic (default: the id itself). */
  recordOf?: (id: unknown) => unknown;
}

export function guardedTable<Row>(Base: InstanceBoundTableClass<Row>, options: GuardOptions) {
  const { resource, maxIdLength } = options;
  const recordOf = options.recordOf ?? ((id: unknown) => id);
  return class Guarded extends Base {
    static parsePath(path: unknown, ...rest: unknown[]) {
      checkPathLength(path, maxIdLength);
      return super.parsePath(path, ...rest);
    }

    static put(...args: unknown[]) {
      return super.put(...checkRequestBody(args));
    }

    static patch(...args: unknown[]) {
      return super.patch(...checkRequestBody(args));
    }

    static post(...args: unknown[]) {
      return super.post(...checkRequestBody(args));
    }

    /**
     * WebSocket (and SSE, without `incoming`): records the connection's socket, so that the class's
     * WebSocket writes are bounded per connection (lib/websocket-writes.ts).
     */
    connect(incoming: unknown, target?: RequestTarget) {
      if (incoming) {
        const request = (this.getContext() as (HarperContext & { _nodeRequest?: { socket?: Partial<Pausable> } }) | undefined)?._nodeRequest;
        bindIncomingSocket(incoming, request?.socket);
      }
      return super.connect(incoming, target);
    }

    subscribe(request?: unknown) {
      const id = this.getId();
      const subscription = super.subscribe(withReplay(request, id == null || id === '')) as Promise<Watchable> | Watchable;
      const socket = (this.getContext() as { socket?: Closable } | undefined)?.socket;
      return isPromise(subscription) ? subscription.then((s) => watchConsumer(s, socket)) : watchConsumer(subscription, socket);
    }

    // Roles we do not define fall back to Harper's own table permissions (super.allowX).
    allowRead(user: User | undefined, target?: RequestTarget) {
      return authorize(user, resource, 'read', recordOf(this.getId()), () => super.allowRead(user, target));
    }

    allowCreate(user: User | undefined, data: unknown, target?: RequestTarget) {
      return authorize(user, resource, 'write', recordOf(this.getId()), () => super.allowCreate(user, data, target));
    }

    allowUpdate(user: User | undefined, data: unknown, target?: RequestTarget) {
      return authorize(user, resource, 'write', recordOf(this.getId()), () => super.allowUpdate(user, data, target));
    }

    allowDelete(user: User | undefined, target?: RequestTarget) {
      return authorize(user, resource, 'delete', recordOf(this.getId()), () => super.allowDelete(user, target));
    }
  };
}
