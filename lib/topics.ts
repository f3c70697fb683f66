/**
 * The `topics` resource: the catch-all topic space (exported under the empty name, so it serves
 * every path and topic no other resource owns). Payloads are stored and fanned out as sent; this
 * class only keeps out what no topic should hold (lib/topic-rules.ts). Read rights come from
 * Harper's table permissions (roles.yaml); writes are the admin's (lib/access.ts).
 */
import { tables } from 'harperdb';
import { Refusal, forbidden } from './errors.js';
import { deniedMessage, roleOf } from './access.js';
import { LIMITS, checkPathLength, checkRequestBody } from './limits.js';
import { checkTopicWrite } from './topic-rules.js';
import type { InstanceBoundTableClass, RequestTarget, User } from './harper-types.js';

const TopicsTable = tables.topics as unknown as InstanceBoundTableClass<unknown>;

function isHttpRequest(context: unknown): boolean {
  return typeof (context as { headers?: { get?: unknown } } | undefined)?.headers?.get === 'function';
}

export class Topics extends TopicsTable {
  static parsePath(path: unknown, ...rest: unknown[]) {
    checkPathLength(path, LIMITS.maxTopicLength);
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

  put(data: unknown, target?: RequestTarget) {
    checkTopicWrite(this.getId(), data);
    if ((data === null || typeof data !== 'object') && isHttpRequest(this.getContext())) {
      // Harper's commit-time validation fails (500) on a scalar record stored through REST, while
      // MQTT stores scalars fine; refuse it over REST with a reason instead.
      throw new Refusal({ error: 'not_an_object', message: 'REST writes to a topic take a JSON object; publish scalar payloads over MQTT' });
    }
    return super.put(data, target);
  }

  patch(data: unknown, target?: RequestTarget) {
    checkTopicWrite(this.getId(), data);
    return super.patch(data, target);
  }

  publish(message: unknown, target?: RequestTarget) {
    checkTopicWrite(this.getId(), message);
    return super.publish(message, target);
  }

  /** Writing to the shared topic space is the admin's; everyone else is refused with a reason. */
  allowCreate(user: User | undefined, data: unknown, target?: RequestTarget) {
    return this.adminOnly(user, () => super.allowCreate(user, data, target));
  }

  allowUpdate(user: User | undefined, data: unknown, target?: RequestTarget) {
    return this.adminOnly(user, () => super.allowUpdate(user, data, target));
  }

  allowDelete(user: User | undefined, target?: RequestTarget) {
    return this.adminOnly(user, () => super.allowDelete(user, target));
  }

  private adminOnly(user: User | undefined, harperDecides: () => unknown): unknown {
    if (!user) return false;
    if (roleOf(user) === 'admin') return true;
    if (roleOf(user) !== undefined) throw forbidden(deniedMessage(user, 'write', `topic "${String(this.getId())}"`));
    return harperDecides(); // a role we do not define: Harper's table permissions
  }
}
