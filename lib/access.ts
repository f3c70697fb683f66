/**
 * Who may do what: the one place where the backbone's roles become per-record decisions.
 *
 * Roles (roles.yaml) give Harper-level READ rights only. Every write right is granted here, by
 * our resource classes, so that no client can write around the validation rules through another
 * door (Harper's operations API honours table permissions: a role with `insert` on a table could
 * `upsert` arbitrary records there without passing through lib/sensor-rules.ts).
 *
 * | role     | sensors                                   | own ids                          |
 * |----------|-------------------------------------------|----------------------------------|
 * | admin    | everything (Harper super user)            |                                  |
 * | operator | read and subscribe, any id and wildcards  |                                  |
 * | viewer   | read and subscribe, any id and wildcards  |                                  |
 * | device   | read, subscribe and write its own ids only; no collection or wildcard reads | its username, plus the ids granted to it in the `devices` table |
 *
 * Like Mosquitto's `%u` ACL patterns, a device named `101` owns `sensors/101`; a gateway that
 * speaks for several sensors is granted them explicitly (npm run users -- grant ...).
 */
import { tables } from 'harperdb';
import type { User } from './harper-types.js';

export type RoleName = 'admin' | 'operator' | 'viewer' | 'device';
const NAMED_ROLES: readonly string[] = ['operator', 'viewer', 'device'];

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

export type Action = 'read' | 'write' | 'delete';

/**
 * The decision for a sensor record (`id`) or the whole table / a wildcard (`id` null).
 * Returns undefined for users whose role we do not define: the caller defers to Harper's own
 * table permissions for them.
 */
export async function maySensor(user: User | undefined, action: Action, id: string | null): Promise<boolean | undefined> {
  const role = roleOf(user);
  if (!user) return false;
  switch (role) {
    case 'admin':
      return true;
    case 'operator':
    case 'viewer':
      return action === 'read';
    case 'device':
      return action !== 'delete' && id !== null && deviceOwns(user, 'sensors', id);
    default:
      return undefined;
  }
}

export function deniedMessage(user: User | undefined, action: Action, what: string): string {
  const who = user ? `user "${user.username}" (${roleOf(user) ?? user.role?.role ?? 'no role'})` : 'an anonymous client';
  return `${who} may not ${action} ${what}`;
}
