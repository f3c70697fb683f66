/**
 * Who may do what: the one place where the backbone's roles become per-record decisions.
 *
 * Roles (roles.yaml) give Harper-level READ rights only. Every write right is granted here, by
 * our resource classes, so that no client can write around the validation rules through another
 * door (Harper's operations API honours table permissions: a role with `insert` on a table could
 * `upsert` arbitrary records there without passing through our rules).
 *
 * Like Mosquitto's `%u` ACL patterns, a device named `101` owns `sensors/101`; a gateway that
 * speaks for several sensors is granted them explicitly (npm run users -- grant ...).
 */
import { tables } from 'harperdb';
import { forbidden } from '../rules/errors.js';
import type { User } from '../harper/types.js';

export type RoleName = 'admin' | 'operator' | 'viewer' | 'device' | 'monitor';
export type Action = 'read' | 'write' | 'delete';
export type Resource =
  | 'sensors'
  | 'topics'
  | 'readings'
  | 'rules'
  | 'alerts'
  | 'stats'
  | 'rollups'
  | 'signs'
  | 'presence'
  | 'notices'
  | 'metrics';

/** all: any record and the collection; own: the device's own records only; none. */
type Scope = 'all' | 'own' | 'none';
type Policy = Record<RoleName, Record<Action, Scope>>;

const readOnly = { read: 'all', write: 'none', delete: 'none' } as const;
const nothing = { read: 'none', write: 'none', delete: 'none' } as const;
/** History, alerts and statistics are written by the server alone, never over a protocol. */
const serverWritten: Policy = {
  admin: readOnly,
  operator: readOnly,
  viewer: readOnly,
  device: nothing,
  monitor: nothing,
};

export const POLICIES: Record<Resource, Policy> = {
  sensors: {
    admin: { read: 'all', write: 'all', delete: 'all' },
    operator: readOnly,
    viewer: readOnly,
    device: { read: 'own', write: 'own', delete: 'none' },
    monitor: nothing,
  },
  /** The catch-all topic space: the admin writes it; everyone else with a role reads it. */
  topics: {
    admin: { read: 'all', write: 'all', delete: 'all' },
    operator: readOnly,
    viewer: readOnly,
    device: nothing,
    monitor: nothing,
  },
  rules: {
    admin: { read: 'all', write: 'all', delete: 'all' },
    operator: { read: 'all', write: 'all', delete: 'all' },
    viewer: readOnly,
    device: nothing,
    monitor: nothing,
  },
  signs: {
    admin: { read: 'all', write: 'all', delete: 'all' },
    operator: { read: 'all', write: 'all', delete: 'none' },
    viewer: readOnly,
    device: { read: 'own', write: 'own', delete: 'none' },
    monitor: nothing,
  },
  readings: serverWritten,
  alerts: serverWritten,
  stats: serverWritten,
  rollups: serverWritten,
  /**
   * Device presence (lib/resources/presence.ts), written by the server from connections: read by whoever
   * may read the devices' sensors and signs; a device reads its own (its username) only.
   */
  presence: {
    admin: readOnly,
    operator: readOnly,
    viewer: readOnly,
    device: { read: 'own', write: 'none', delete: 'none' },
    monitor: nothing,
  },
  /** POST /server-notice (lib/resources/server-notice.ts): announcing a stop is the admin's alone. */
  notices: {
    admin: { read: 'none', write: 'all', delete: 'none' },
    operator: nothing,
    viewer: nothing,
    device: nothing,
    monitor: nothing,
  },
  /** GET /metrics (lib/resources/metrics.ts): the node's figures, for the admin and a monitor, which reads no data. */
  metrics: {
    admin: { read: 'all', write: 'none', delete: 'none' },
    operator: nothing,
    viewer: nothing,
    device: nothing,
    monitor: { read: 'all', write: 'none', delete: 'none' },
  },
};

const NAMED_ROLES: readonly string[] = ['operator', 'viewer', 'device', 'monitor'];

/** The backbone role of a user; undefined for anonymous users and roles we do not define. */
export function roleOf(user: User | undefined): RoleName | undefined {
  if (!user) return undefined;
  if (user.role?.permission?.super_user) return 'admin';
  const name = user.role?.role;
  return name && NAMED_ROLES.includes(name) ? (name as RoleName) : undefined;
}

/** A device's grants: extra ids it may act for, beyond its own username. */
export interface DeviceGrants {
  id: string; // the device's username
  sensors?: string[];
  signs?: string[];
}

export type GrantKind = 'sensors' | 'signs';

interface GrantsTable {
  get(id: string): Promise<DeviceGrants | undefined> | DeviceGrants | undefined;
}
const Devices = tables.devices as unknown as GrantsTable;

/** Whether this device may act for the record `id` of the given kind (its own name, or granted). */
export async function deviceOwns(user: User, kind: GrantKind, id: string): Promise<boolean> {
  if (id === user.username) return true;
  const grants = await Devices.get(user.username);
  return grants?.[kind]?.includes(id) ?? false;
}

/**
 * The decision when it needs no look-up (every role's table-wide rights, and a device acting for
 * its own name); undefined when it does (a device's grants) or the role is not ours.
 */
export function decidedNow(
  user: User | undefined,
  resource: Resource,
  action: Action,
  id: string | null,
): boolean | undefined {
  if (!user) return false;
  const role = roleOf(user);
  if (!role) return undefined;
  const scope = POLICIES[resource][role][action];
  if (scope === 'all') return true;
  if (scope === 'none' || id === null) return false;
  return id === user.username ? true : undefined;
}

/**
 * The decision for one record (`id`) or for the whole table / a wildcard (`id` null). Undefined
 * for users whose role we do not define: the caller defers to Harper's own table permissions.
 */
export async function may(
  user: User | undefined,
  resource: Resource,
  action: Action,
  id: string | null,
): Promise<boolean | undefined> {
  const now = decidedNow(user, resource, action, id);
  if (now !== undefined || !user || roleOf(user) === undefined) return now;
  // A presence record is named after a device user; grants name sensors and signs, not devices.
  if (resource === 'presence') return false;
  return deviceOwns(user, resource === 'sensors' ? 'sensors' : 'signs', id!);
}

export function deniedMessage(user: User | undefined, action: Action, what: string): string {
  const who = user
    ? `user "${user.username}" (${roleOf(user) ?? user.role?.role ?? 'no role'})`
    : 'an anonymous client';
  return `${who} may not ${action} ${what}`;
}

/**
 * For the resource classes' allowRead/allowCreate/allowUpdate/allowDelete: an authenticated user
 * without the right gets our `forbidden` refusal (a JSON 403; over MQTT 5 Harper answers it with
 * SUBACK 135 and PUBACK 128, `MQTT5_REASON.NOT_AUTHORIZED` and `.FAILURE` in shared/codes.ts); an
 * anonymous one gets `false`, which Harper answers with its 401 and `WWW-Authenticate` challenge.
 */
export function authorize(
  user: User | undefined,
  resource: Resource,
  action: Action,
  rawId: unknown,
  harperDecides: () => unknown,
): boolean | Promise<boolean> {
  const id = rawId == null || rawId === '' ? null : String(rawId);
  const verdict = (allowed: boolean): boolean => {
    if (!allowed && user)
      throw forbidden(deniedMessage(user, action, id === null ? `all ${resource}` : `${resource} "${id}"`));
    return allowed;
  };
  // Answered at once when no look-up is needed (Harper takes a plain boolean as well as a
  // promise): this runs for every request, publish and subscription.
  const now = decidedNow(user, resource, action, id);
  if (now !== undefined) return verdict(now);
  return (async () => verdict((await may(user, resource, action, id)) ?? Boolean(await harperDecides())))();
}
