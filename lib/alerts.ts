/**
 * Rules and alerts inside the runtime. Every accepted, stored reading is evaluated in the write
 * path, within the same transaction (never from a subscription, which may coalesce bursts): each
 * rule that covers the sensor may move its alert record `alerts/<ruleId>/<sensorId>` to `firing`
 * or `resolved`, and that change is the event `alerts/#` subscribers receive.
 */
import { tables } from 'harperdb';
import { authorize } from './access.js';
import { Refusal } from './errors.js';
import { checkRule, nextState, type AlertRule, type AlertState } from './alert-rules.js';
import { refuseWrite } from './history.js';
import { checkPathLength, checkRequestBody } from './limits.js';
import { withReplay } from './replay.js';
import { MAX_ID_LENGTH, type SensorRecord } from './sensor-rules.js';
import type { InstanceBoundTableClass, RequestTarget, User } from './harper-types.js';

export interface AlertRecord {
  id: string;
  ruleId: string;
  sensorId: string;
  state: AlertState;
  field: AlertRule['field'];
  value: number;
  time: number;
}

interface Searchable<Row> {
  search(query: { conditions: { attribute: string; value: unknown }[] }, context?: unknown): AsyncIterable<Row>;
}

const RulesTable = tables.rules as unknown as InstanceBoundTableClass<AlertRule> & Searchable<AlertRule>;
const AlertsTable = tables.alerts as unknown as InstanceBoundTableClass<AlertRecord>;

async function rulesFor(sensorId: string, context: unknown): Promise<AlertRule[]> {
  const found: AlertRule[] = [];
  // Two indexed look-ups per reading: rules take effect on the very next reading after they are
  // written, which a cache fed by a subscription could not promise.
  for (const key of [sensorId, '*']) {
    for await (const rule of RulesTable.search({ conditions: [{ attribute: 'sensorId', value: key }] }, context)) found.push(rule);
  }
  return found;
}

/** Evaluates every rule covering this reading; writes the alerts whose state changes. */
export async function evaluateRules(record: SensorRecord, context: unknown): Promise<void> {
  for (const rule of await rulesFor(record.id, context)) {
    const value = record[rule.field];
    if (typeof value !== 'number') continue;
    const id = `${rule.id}/${record.id}`;
    const current = (await AlertsTable.get(id, context))?.state;
    const next = nextState(rule, value, current);
    if (!next) continue;
    const alert: AlertRecord = { id, ruleId: rule.id, sensorId: record.id, state: next, field: rule.field, value, time: record.updatedAt };
    await AlertsTable.put(alert, context);
  }
}

/** `rules`: read by everyone with a role, written by operators and the admin, always checked. */
export class Rules extends RulesTable {
  static parsePath(path: unknown, ...rest: unknown[]) {
    checkPathLength(path, MAX_ID_LENGTH);
    return super.parsePath(path, ...rest);
  }

  static put(...args: unknown[]) {
    return super.put(...checkRequestBody(args));
  }

  static patch(...args: unknown[]) {
    return super.patch(...checkRequestBody(args));
  }

  put(data: unknown, target?: RequestTarget) {
    return super.put(checkRule(this.getId(), data), target);
  }

  async patch(data: unknown, target?: RequestTarget) {
    const current = await RulesTable.get(String(this.getId()));
    const merged = { ...(current ? { sensorId: current.sensorId, field: current.field, above: current.above, below: current.below, hysteresis: current.hysteresis } : {}), ...(data as object) };
    for (const key of Object.keys(merged) as (keyof typeof merged)[]) if (merged[key] === undefined || merged[key] === null) delete merged[key];
    return super.put(checkRule(this.getId(), merged), target);
  }

  /** A non-retained publish would fan a rule out without storing it: refuse it with a reason. */
  publish(): never {
    throw new Refusal({ error: 'not_stored', message: 'rules are stored state: PUT them, or publish with retain' });
  }

  subscribe(request?: unknown) {
    return super.subscribe(withReplay(request));
  }

  allowRead(user: User | undefined, target?: RequestTarget) {
    return authorize(user, 'rules', 'read', this.getId(), () => super.allowRead(user, target));
  }

  allowCreate(user: User | undefined, data: unknown, target?: RequestTarget) {
    return authorize(user, 'rules', 'write', this.getId(), () => super.allowCreate(user, data, target));
  }

  allowUpdate(user: User | undefined, data: unknown, target?: RequestTarget) {
    return authorize(user, 'rules', 'write', this.getId(), () => super.allowUpdate(user, data, target));
  }

  allowDelete(user: User | undefined, target?: RequestTarget) {
    return authorize(user, 'rules', 'delete', this.getId(), () => super.allowDelete(user, target));
  }
}

/** `alerts`: subscribable on every protocol (alerts/#, SSE, WebSocket), with replay; never written by clients. */
export class Alerts extends AlertsTable {
  subscribe(request?: unknown) {
    return super.subscribe(withReplay(request));
  }

  allowRead(user: User | undefined, target?: RequestTarget) {
    return authorize(user, 'alerts', 'read', this.getId(), () => super.allowRead(user, target));
  }

  allowCreate(user: User | undefined) {
    return refuseWrite(user, 'write', 'alerts');
  }

  allowUpdate(user: User | undefined) {
    return refuseWrite(user, 'write', 'alerts');
  }

  allowDelete(user: User | undefined) {
    return refuseWrite(user, 'delete', 'alerts');
  }
}
