/**
 * The `topics` resource: the catch-all topic space (exported under the empty name, so it serves
 * every path and topic no other resource owns). Payloads are stored and fanned out as sent; this
 * class only keeps out what no topic should hold (lib/rules/topics.ts). Everyone with a role reads
 * it; writes are the admin's (lib/access/policy.ts).
 */
import { tables } from 'harperdb';
import { Refusal } from '../rules/errors.js';
import { guardedTable } from '../access/guarded-table.js';
import { LIMITS } from '../rules/limits.js';
import { checkTopicWrite } from '../rules/topics.js';
import type { InstanceBoundTableClass, RequestTarget } from '../harper/types.js';

const TopicsTable = tables.topics as unknown as InstanceBoundTableClass<unknown>;

/**
 * An empty non-retained MQTT payload is a legal message (a trigger, a ping), but Harper hands it
 * to `publish` as `undefined` and then fails validating it; it is published in the shape Harper
 * gives the payloads it does not parse, which MQTT subscribers receive as the raw (empty) bytes.
 */
const EMPTY = { contentType: 'application/octet-stream', data: Buffer.alloc(0) };

function isHttpRequest(context: unknown): boolean {
  return typeof (context as { headers?: { get?: unknown } } | undefined)?.headers?.get === 'function';
}

export class Topics extends guardedTable(TopicsTable, { resource: 'topics', maxIdLength: LIMITS.maxTopicLength }) {
  put(data: unknown, target?: RequestTarget) {
    checkTopicWrite(this.getId(), data);
    if ((data === null || typeof data !== 'object') && isHttpRequest(this.getContext())) {
      // Harper's commit-time validation fails (500) on a scalar record stored through REST, while
      // MQTT stores scalars fine; refuse it over REST with a reason instead.
      throw new Refusal({
        error: 'not_an_object',
        message: 'REST writes to a topic take a JSON object; publish scalar payloads over MQTT',
      });
    }
    return super.put(data, target);
  }

  patch(data: unknown, target?: RequestTarget) {
    checkTopicWrite(this.getId(), data);
    return super.patch(data, target);
  }

  publish(message: unknown, target?: RequestTarget) {
    checkTopicWrite(this.getId(), message);
    return super.publish(message === undefined ? EMPTY : message, target);
  }
}
