/**
 * What every exported table class of ours does at Harper's doors, written once:
 * - the permission hooks Harper calls before each read, subscription (incl. wildcards and replay),
 *   write and delete on any protocol, answered from the policy table in lib/access/policy.ts;
 * - every write door goes through the class's own rules or is refused: REST
 *   PUT / PATCH / POST, MQTT publish with retain (put) and without (publish), and messages on a
 *   WebSocket (connect). A door the class does not implement itself answers 405
 *   `method_not_allowed` naming the doors it has, instead of falling through to Harper's table
 *   method, which stores whatever it is given (`POST /signs/` stored an invalid colour, control
 *   characters and a forged author). DELETE carries no data: the policy's `delete` right decides;
 * - `?startTime=` / `?previousCount=` on every subscription (lib/streams/replay.ts), and subscribers that
 *   fall too far behind cut off (lib/streams/slow-consumers.ts);
 * - ids over the length limit refused in `parsePath`, and REST bodies checked before Harper parses
 *   them (lib/rules/limits.ts);
 * - a WebSocket's writes bounded per connection (lib/streams/websocket-writes.ts);
 * - a device user's WebSocket counted for its presence (lib/resources/presence.ts).
 * A resource class extends `guardedTable(tables.x, {...})` and adds only its own rules.
 */
import { authorize, type Resource } from './policy.js';
import { Refusal } from '../rules/errors.js';
import { checkPathLength, checkRequestBody } from '../rules/limits.js';
import { webSocketOpened } from '../resources/presence.js';
import { withReplay } from '../streams/replay.js';
import { isEventStream, lastEventIdOf, markInitialState } from '../streams/sse-resume.js';
import type { StreamProtocol } from '../metrics/counters.js';
import { noteRetained } from '../mqtt/deliveries.js';
import { watchConsumer, type MqttConnection, type Watchable } from '../streams/slow-consumers.js';
import { acceptWebSocketWrites, bindIncomingSocket, type Pausable } from '../streams/websocket-writes.js';

function isPromise<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
import type { HarperContext, InstanceBoundTableClass, RequestTarget, User } from '../harper/types.js';

/** The write doors a table class may implement with its rules, as clients know them. */
const DOORS = {
  put: 'PUT (and MQTT publish with retain)',
  patch: 'PATCH',
  post: 'POST',
  publish: 'MQTT publish without retain',
  connect: 'WebSocket messages',
} as const;
type Door = keyof typeof DOORS;

function notAWriteDoor(resource: string, door: Door, open: Door[]): Refusal {
  // Publishing is not offered instead: some classes implement it only to refuse it with a reason.
  const allowed = open.filter((name) => name !== 'publish').map((name) => DOORS[name]);
  const instead = allowed.length > 0 ? `use ${allowed.join(' or ')}` : 'it is written by the server only';
  return new Refusal(
    {
      error: 'method_not_allowed',
      allowed,
      message: `${resource} cannot be written by ${DOORS[door]}: no rules check that door; ${instead}`,
    },
    405,
  );
}

export interface GuardOptions {
  /** Which row of the policy table applies. */
  resource: Resource;
  maxIdLength: number;
  /** The name clients know the resource by, in refusals (default: `resource`). */
  name?: string;
  /** The record the rights are about, from the id in the path or topic (default: the id itself). */
  recordOf?: (id: unknown) => unknown;
}

export function guardedTable<Row>(Base: InstanceBoundTableClass<Row>, options: GuardOptions) {
  const { resource, maxIdLength } = options;
  const name = options.name ?? resource;
  const recordOf = options.recordOf ?? ((id: unknown) => id);
  return class Guarded extends Base {
    /** The doors the concrete class implements itself (its own method, not this class's). */
    private openDoors(): Door[] {
      return (Object.keys(DOORS) as Door[]).filter((door) => this[door] !== Guarded.prototype[door]);
    }

    /** Harper called this class's own method for a door: no rules exist for it, refuse. */
    private refuse(door: Door): never {
      throw notAWriteDoor(name, door, this.openDoors());
    }

    // Each door passes to the table only when called as `super.x()` from a class that implements
    // it (then `this.x` is that class's method); called by Harper directly, it is refused.
    put(data: unknown, target?: RequestTarget) {
      if (this.put === Guarded.prototype.put) this.refuse('put');
      return super.put(data, target);
    }

    patch(data: unknown, target?: RequestTarget) {
      if (this.patch === Guarded.prototype.patch) this.refuse('patch');
      return super.patch(data, target);
    }

    post(data: unknown, target?: RequestTarget) {
      if (this.post === Guarded.prototype.post) this.refuse('post');
      return super.post(data, target);
    }

    publish(message: unknown, target?: RequestTarget) {
      if (this.publish === Guarded.prototype.publish) this.refuse('publish');
      return super.publish(message, target);
    }

    /**
     * WebSocket (and SSE, without `incoming`). Records the connection's socket for the write
     * bound, and answers every message with a 405 error when the class reads none itself (Harper
     * would drop them without a word).
     */
    connect(incoming: unknown, target?: RequestTarget) {
      const outgoing = super.connect(incoming, target);
      if (!incoming) return outgoing;
      const request = (
        this.getContext() as (HarperContext & { _nodeRequest?: { socket?: Partial<Pausable> } }) | undefined
      )?._nodeRequest;
      bindIncomingSocket(incoming, request?.socket);
      webSocketOpened(this.getContext()?.user, incoming);
      if (this.connect !== Guarded.prototype.connect) return outgoing;
      const refusal = notAWriteDoor(name, 'connect', this.openDoors());
      return acceptWebSocketWrites(outgoing, incoming, () => Promise.reject(refusal));
    }

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

    subscribe(request?: unknown) {
      const id = this.getId();
      const subscribedAt = Date.now();
      const collection = id == null || id === '';
      // An MQTT subscription's context is its connection (Harper's session and socket); an SSE or
      // WebSocket subscription's is its HTTP request.
      const context = this.getContext() as (MqttConnection & { headers?: unknown }) | undefined;
      const mqtt = context?.socket ? context : undefined;
      const sse = !mqtt && isEventStream(context);
      const protocol: StreamProtocol | undefined = mqtt
        ? 'mqtt'
        : sse
          ? 'sse'
          : context?.headers
            ? 'websocket'
            : undefined;
      const replaying = withReplay(request, collection, sse ? lastEventIdOf(context) : undefined);
      const subscription = super.subscribe(replaying) as Promise<Watchable> | Watchable;
      // A new MQTT subscription first gets each record's current state: those are retained
      // messages, whose RETAIN flag lib/mqtt/deliveries.ts sets (not on a replay or a resume).
      const { omitCurrent, startTime, previousCount } = (replaying ?? {}) as {
        omitCurrent?: boolean;
        startTime?: unknown;
        previousCount?: unknown;
      };
      const sendsCurrent = mqtt?.socket && !omitCurrent && startTime === undefined && previousCount === undefined;
      const socket = mqtt?.socket;
      const options =
        sendsCurrent && socket
          ? {
              subscribedAt,
              protocol,
              beforeLive: (event: { type?: string; id?: unknown }) =>
                event.type === 'put' &&
                event.id != null &&
                noteRetained(socket, Array.isArray(event.id) ? event.id.join('/') : String(event.id)),
            }
          : { subscribedAt, protocol };
      // A table stream without a replay starts with every record's current state (lib/streams/sse-resume.ts).
      const initialBefore = sse && collection && startTime === undefined ? subscribedAt : undefined;
      const watched = (s: Watchable) => {
        const stream = watchConsumer(s, mqtt, options);
        return initialBefore === undefined ? stream : markInitialState(stream, initialBefore);
      };
      return isPromise(subscription) ? subscription.then(watched) : watched(subscription);
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
