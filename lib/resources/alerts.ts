/**
 * Rules and alerts inside the runtime. Every accepted, stored reading is evaluated in the write
 * path, in the transaction that appends its reading (never from a subscription, which may
 * coalesce bursts): when a rule that covers the sensor changes state (`firing` or `resolved`),
 * an alert record
 * `alerts/<ruleId>/<sensorId>/<µs>` is appended, and that record is the event `alerts/#`
 * subscribers receive.
 *
 * Alerts are appended, never updated: Harper keeps the latest version of a record and may drop an
 * earlier version that commits after a later one, so one record per rule and sensor lost
 * intermediate transitions under a burst; distinct records all arrive. The current state of a rule
 * for a sensor is its latest alert (`/alerts/?ruleId=..&sensorId=..&sort(-time)&limit(1)`).
 */
import { tables } from 'harperdb';
import { guardedTable } from '../access/guarded-table.js';
import { Refusal } from '../rules/errors.js';
import { checkRule, nextState, type AlertRule, type AlertState } from '../rules/alerts.js';
import { LIMITS } from '../rules/limits.js';
import { countAlertsStored } from '../metrics/counters.js';
import { rulesFor } from '../write-path/rule-cache.js';
import { MAX_ID_LENGTH, type AlertRecord, type SensorRecord } from '../../shared/records.js';
import type { InstanceBoundTableClass, RequestTarget } from '../harper/types.js';

const RulesTable = tables.rules as unknown as InstanceBoundTableClass<AlertRule>;
const AlertsTable = tables.alerts as unknown as InstanceBoundTableClass<AlertRecord>;

/**
 * The latest decision per rule and sensor made by this thread. Writes of one sensor are evaluated
 * in arrival order (lib/write-path/group-commit.ts), but the next write of a sensor may be evaluated before
 * the previous one's batch has committed, and a committed write is not always visible to reads at
 * once; the decision made here is. The newer of the two (by reading time) wins, so a decision made
 * on another thread or node later still counts.
 */
const decided = new Map<string, { state: AlertState; time: number }>();

interface AlertSearch {
  search(
    query: {
      conditions: { attribute: string; value: unknown }[];
      sort: { attribute: string; descending: boolean };
      limit: number;
    },
    context?: unknown,
  ): AsyncIterable<AlertRecord>;
}

async function latestStored(ruleId: string, sensorId: string, context: unknown): Promise<AlertRecord | undefined> {
  const query = {
    conditions: [
      { attribute: 'ruleId', value: ruleId },
      { attribute: 'sensorId', value: sensorId },
    ],
    sort: { attribute: 'time', descending: true },
    limit: 1,
  };
  for await (const alert of (AlertsTable as unknown as AlertSearch).search(query, context)) return alert;
  return undefined;
}

async function currentState(ruleId: string, sensorId: string, context: unknown): Promise<AlertState | undefined> {
  const key = `${ruleId}/${sensorId}`;
  const mine = decided.get(key);
  const stored = await latestStored(ruleId, sensorId, context);
  if (stored && (!mine || stored.time > mine.time)) return stored.state;
  return mine?.state;
}

/** Evaluates every rule covering this reading; appends an alert for each change of state. */
export async function evaluateRules(record: SensorRecord, context: unknown): Promise<void> {
  for (const rule of await rulesFor(record.id)) {
    const value = record[rule.field];
    if (typeof value !== 'number') continue;
    const next = nextState(rule, value, await currentState(rule.id, record.id, context));
    if (!next) continue;
    decided.set(`${rule.id}/${record.id}`, { state: next, time: record.updatedAt });
    const id = `${rule.id}/${record.id}/${Math.round(record.updatedAt * 1000)}`;
    const alert: AlertRecord = {
      id,
      ruleId: rule.id,
      sensorId: record.id,
      state: next,
      field: rule.field,
      value,
      time: record.updatedAt,
    };
    await AlertsTable.put(alert, context);
    countAlertsStored(1);
  }
}

/** `rules`: read by everyone with a role, written by operators and the admin, always checked. */
export class Rules extends guardedTable(RulesTable, { resource: 'rules', maxIdLength: MAX_ID_LENGTH }) {
  put(data: unknown, target?: RequestTarget) {
    return super.put(checkRule(this.getId(), data), target);
  }

  async patch(data: unknown, target?: RequestTarget) {
    const current = await RulesTable.get(String(this.getId()));
    const merged = {
      ...(current
        ? {
            sensorId: current.sensorId,
            field: current.field,
            above: current.above,
            below: current.below,
            hysteresis: current.hysteresis,
          }
        : {}),
      ...(data as object),
    };
    for (const key of Object.keys(merged) as (keyof typeof merged)[])
      if (merged[key] === undefined || merged[key] === null) delete merged[key];
    return super.put(checkRule(this.getId(), merged), target);
  }

  /** A non-retained publish would fan a rule out without storing it: refuse it with a reason. */
  publish(): never {
    throw new Refusal({ error: 'not_stored', message: 'rules are stored state: PUT them, or publish with retain' });
  }
}

/**
 * `alerts`: subscribable on every protocol (alerts/#, SSE, WebSocket), with replay; the policy
 * table lets nobody write it over a protocol.
 */
export class Alerts extends guardedTable(AlertsTable, { resource: 'alerts', maxIdLength: LIMITS.maxTopicLength }) {}
