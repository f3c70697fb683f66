/**
 * The dashboard's cookie sessions, as Harper 4.7.29 keeps them, and the rules we add on top.
 *
 * Harper stores a session as a record `{id, user}` in the table `system.hdb_session`; its cookie
 * holds the id. On every request that sends the cookie, Harper loads the record and logs the
 * request in as `user`, by name only: it never looks at the password again, a removed user's
 * session stays logged in (with no role) and a re-added user of the same name revives it, a
 * password change leaves it working, and nothing expires it (the cookie says year 8307). Its
 * login also keeps whatever session id the client sent (session fixation).
 *
 * So our /login (lib/resources/session.ts) writes three more fields into the same record, and the request
 * guard (lib/access/http-guard.ts) checks them before Harper's authentication sees the cookie:
 * - `lastSeen`: refused (and deleted) after SESSION_IDLE_TIMEOUT without a request (default 12 h);
 * - `credential`: a digest of the user's stored password hash at login. Harper hashes with a
 *   fresh salt, so a rotated password, a removed user and a re-added one all differ: the session
 *   ends on the first request after the change, on every node that has the change;
 * - `createdAt`, for the record.
 * A session record without these (one Harper made by itself) is not honoured.
 */
import { createHash } from 'node:crypto';
import { databases } from 'harperdb';

export interface SessionRecord {
  id: string;
  user?: string | null;
  createdAt?: number;
  lastSeen?: number;
  credential?: string;
}

interface StoredUser {
  username?: string;
  password?: string;
  active?: boolean;
}

interface SystemTable<T> {
  get(id: string): Promise<T | undefined> | T | undefined;
  put(record: T): Promise<unknown> | unknown;
  delete(id: string): Promise<unknown> | unknown;
}

const system = (databases as unknown as { system: Record<string, unknown> }).system;
const Sessions = system.hdb_session as SystemTable<SessionRecord>;
const Users = system.hdb_user as SystemTable<StoredUser>;

/** "90", "90s", "30m", "12h", "2d" -> milliseconds; undefined for anything else. */
export function parseDuration(text: string | undefined): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text ?? '');
  if (!match) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 's'] ?? 1000;
  const ms = Number(match[1]) * unit;
  return ms > 0 ? ms : undefined;
}

const DEFAULT_IDLE_MS = 12 * 3_600_000;
/** How long a session may go without a request (SESSION_IDLE_TIMEOUT, e.g. "30m"; default 12 h). */
export const IDLE_MS = parseDuration(process.env.SESSION_IDLE_TIMEOUT) ?? DEFAULT_IDLE_MS;
/**
 * `lastSeen` is written at most this often, not on every request: a write per request would cost
 * more than the request. A session therefore lives between IDLE_MS and IDLE_MS + this.
 */
export const TOUCH_MS = Math.min(60_000, Math.max(1000, Math.floor(IDLE_MS / 10)));

/** A digest of the user's stored (salted) password hash; undefined when the user is gone or inactive. */
export async function credentialOf(username: string): Promise<string | undefined> {
  const user = await Users.get(username);
  if (!user || user.active === false || typeof user.password !== 'string') return undefined;
  return createHash('sha256').update(`${username}\0${user.password}`).digest('base64url');
}

export type Verdict = { kind: 'none' } | { kind: 'end' } | { kind: 'valid'; touch: boolean };

/** Whether the session `id` may log a request in now, by the rules above. */
export async function checkSession(id: string, now = Date.now()): Promise<Verdict> {
  const record = await Sessions.get(id);
  if (!record) return { kind: 'none' };
  if (!record.user || typeof record.lastSeen !== 'number' || !record.credential) return { kind: 'end' };
  if (now - record.lastSeen > IDLE_MS) return { kind: 'end' };
  if ((await credentialOf(record.user)) !== record.credential) return { kind: 'end' };
  const touch = now - record.lastSeen >= TOUCH_MS;
  // A stored record's fields are not own properties (spreading it loses them): name each.
  if (touch)
    await Sessions.put({
      id,
      user: record.user,
      createdAt: record.createdAt,
      credential: record.credential,
      lastSeen: now,
    });
  return { kind: 'valid', touch };
}

/** Deletes the session record: its cookie logs nobody in any more. */
export async function endSession(id: string): Promise<void> {
  await Sessions.delete(id);
}

/** The fields /login adds to the record Harper creates. */
export async function sessionFields(username: string, now = Date.now()): Promise<Omit<SessionRecord, 'id'>> {
  return { user: username, createdAt: now, lastSeen: now, credential: await credentialOf(username) };
}

/**
 * The name Harper gives the session cookie for a request: its Origin (or Host) without the scheme,
 * with only the FIRST non-word character replaced by `_`, plus `-hdb-session` (4.7.29).
 */
export function sessionCookieName(originOrHost: string | undefined): string {
  return (originOrHost ? originOrHost.replace(/^https?:\/\//, '').replace(/\W/, '_') + '-' : '') + 'hdb-session';
}

/** The value of cookie `name` in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(/;\s*/) ?? []) {
    if (part.startsWith(name + '=')) return part.slice(name.length + 1);
  }
  return undefined;
}

/** The Cookie header without any Harper session cookie (undefined when nothing else is left). */
export function withoutSessionCookies(header: string): string | undefined {
  const kept = header.split(/;\s*/).filter((part) => !/^[^=]*hdb-session=/.test(part));
  return kept.length > 0 ? kept.join('; ') : undefined;
}
