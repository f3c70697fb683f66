/**
 * The alert rules, held in memory per worker thread so that a reading costs no rule look-up.
 *
 * Every reading is evaluated against the rules that cover its sensor; reading them from the table
 * took two indexed searches per reading, the largest cost our code added to the write path. Rules
 * change rarely, so each thread loads the whole `rules` table once and keeps it until the table
 * changes. Changes are learnt from a subscription to the table, which Harper feeds from every
 * thread's commits and from replication, so a rule written anywhere (another thread, another node)
 * applies from the next reading after its commit reaches this thread.
 *
 * A generation counter guards the reload: if a change arrives while the table is being read, that
 * read may predate the change, so it is used once and not kept.
 */
import { tables } from 'harperdb';
import type { AlertRule } from '../rules/alerts.js';

interface RulesSource {
  search(query: { conditions: never[] }): AsyncIterable<AlertRule>;
  subscribe(request: { omitCurrent: boolean }): Promise<AsyncIterable<unknown>>;
}

const RulesTable = tables.rules as unknown as RulesSource;

let cached: Map<string, AlertRule[]> | undefined;
let generation = 0;
let watching = false;
/** True once the subscription is established: only then can a loaded copy be kept. */
let live = false;

/** Copies a stored rule into a plain object (Harper's records are frozen, with getters). */
function plain(rule: AlertRule): AlertRule {
  const copy: AlertRule = { id: rule.id, sensorId: rule.sensorId, field: rule.field };
  if (rule.above !== undefined && rule.above !== null) copy.above = rule.above;
  if (rule.below !== undefined && rule.below !== null) copy.below = rule.below;
  if (rule.hysteresis !== undefined && rule.hysteresis !== null) copy.hysteresis = rule.hysteresis;
  return copy;
}

/** Any change to `rules` (put, delete, from any thread or node) drops this thread's copy. */
async function watch(): Promise<void> {
  watching = true;
  try {
    const changes = await RulesTable.subscribe({ omitCurrent: true });
    live = true;
    for await (const _change of changes) {
      generation++;
      cached = undefined;
    }
  } catch (error) {
    console.error(
      'rules cache: subscription to the rules table failed; rules are read per reading until it is back',
      error,
    );
  } finally {
    // Without a live subscription the cache cannot be trusted: stop using it, and watch again.
    watching = false;
    live = false;
    generation++;
    cached = undefined;
  }
}

async function load(): Promise<Map<string, AlertRule[]>> {
  const bySensor = new Map<string, AlertRule[]>();
  for await (const rule of RulesTable.search({ conditions: [] })) {
    const list = bySensor.get(rule.sensorId) ?? [];
    list.push(plain(rule));
    bySensor.set(rule.sensorId, list);
  }
  return bySensor;
}

/**
 * True when this thread knows, without reading anything, that no rule covers the sensor (the
 * cache is loaded and live): the write path then skips evaluation altogether.
 */
export function noRulesFor(sensorId: string): boolean {
  if (!cached) return false;
  return !cached.has(sensorId) && !cached.has('*');
}

/** The rules that cover a sensor: its own, then those for every sensor ("*"). */
export async function rulesFor(sensorId: string): Promise<AlertRule[]> {
  if (!watching) void watch();
  let rules = cached;
  if (!rules) {
    const before = generation;
    const trusted = live;
    rules = await load();
    if (trusted && generation === before) cached = rules;
  }
  const own = rules.get(sensorId);
  const all = rules.get('*');
  if (!own) return all ?? [];
  return all ? own.concat(all) : own;
}
