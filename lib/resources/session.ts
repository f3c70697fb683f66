/**
 * Cookie sessions for the dashboard: POST /login with {"username","password"} checks them with
 * Harper and starts a session (Harper's session cookie), so the page holds no credentials and its
 * same-origin EventSource and WebSocket connections are authenticated by the cookie.
 * GET /login tells who is logged in (401 if nobody); POST /logout ends the session.
 *
 * Harper's sessions alone never end and ignore password changes; lib/access/sessions.ts says what we
 * add, and lib/access/http-guard.ts enforces it on every request before Harper reads the cookie (it also
 * makes sure a login never keeps a session id the client chose).
 */
import { Resource } from 'harperdb';
import { roleOf } from '../access/policy.js';
import { Refusal } from '../rules/errors.js';
import type { User } from '../harper/types.js';
import { endSession, sessionFields, type SessionRecord } from '../access/sessions.js';

interface SessionContext {
  user?: User;
  login?: (username: string, password: string) => Promise<void>;
  session?: { id?: string; update(values: Omit<SessionRecord, 'id'>): Promise<void> | void };
}

interface Bound {
  getContext(): SessionContext | undefined;
}

const Base = Resource as unknown as new (...args: never[]) => Bound;

function who(user: User): { username: string; role: string } {
  return { username: user.username, role: roleOf(user) ?? user.role?.role ?? 'none' };
}

/** A response object: Harper sends `status` and `data` as such only when `headers` is present. */
const respond = (status: number, data?: unknown) => ({ status, headers: {}, data });
const unauthenticated = (message = 'not logged in') => respond(401, { error: 'unauthenticated', message });

export class Login extends Base {
  /** Open to anyone: this is how one logs in. */
  allowRead() {
    return true;
  }

  allowCreate() {
    return true;
  }

  allowUpdate() {
    return true;
  }

  get() {
    const user = this.getContext()?.user;
    return user ? who(user) : unauthenticated();
  }

  async post(data: unknown) {
    const { username, password } = (data ?? {}) as { username?: unknown; password?: unknown };
    if (typeof username !== 'string' || typeof password !== 'string' || !username) {
      throw new Refusal({
        error: 'missing_field',
        field: 'username',
        message: 'send {"username": ..., "password": ...}',
      });
    }
    const context = this.getContext();
    try {
      await context?.login?.(username, password);
    } catch {
      return unauthenticated('wrong user name or password');
    }
    if (!context?.user) return unauthenticated();
    // Harper's login starts the session write without waiting for it; a request made with the new
    // cookie right after this answer could find no session. Write it again, with the fields that
    // let the session expire and end with the user's password (lib/access/sessions.ts), and wait.
    await context.session?.update(await sessionFields(context.user.username));
    return who(context.user);
  }
}

export class Logout extends Base {
  allowCreate() {
    return true;
  }

  allowUpdate() {
    return true;
  }

  /** Deletes the session record (Harper's own logout only blanks its user); the guard clears the cookie. */
  async post() {
    const session = this.getContext()?.session;
    if (session?.id) await endSession(session.id);
    else await session?.update({ user: null });
    return respond(204);
  }
}
