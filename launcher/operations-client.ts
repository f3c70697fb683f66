/**
 * A small client for Harper's operations API (JSON over HTTP POST), used by the users CLI and by
 * tests. Every call is made as the admin; errors carry the HTTP status and Harper's message.
 */
import { basicAuth, type AdminCredentials } from './harper-process.js';

export class OperationsError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'OperationsError';
  }
}

export interface HarperUserSummary {
  username: string;
  role: string;
  active: boolean;
}

export interface DeviceGrantsRecord {
  id: string;
  sensors?: string[];
  signs?: string[];
}

export class OperationsClient {
  constructor(
    readonly url: string,
    private readonly admin: AdminCredentials,
  ) {}

  async call<T = unknown>(operation: Record<string, unknown>): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: basicAuth(this.admin),
        },
        body: JSON.stringify(operation),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (error) {
      throw new OperationsError(
        `cannot reach Harper's operations API at ${this.url} (${(error as Error).cause ?? (error as Error).message}); is Harper running?`,
      );
    }
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
    if (response.status === 401) throw new OperationsError(`the admin credentials for ${this.url} were refused`, 401);
    if (!response.ok) {
      const message =
        typeof body === 'object' && body && 'error' in body ? String((body as { error: unknown }).error) : text;
      throw new OperationsError(
        `${String(operation.operation)} failed (${response.status}): ${message}`,
        response.status,
      );
    }
    return body as T;
  }

  addUser(username: string, role: string, password: string): Promise<unknown> {
    return this.call({ operation: 'add_user', username, role, password, active: true });
  }

  setPassword(username: string, password: string): Promise<unknown> {
    return this.alterUser(username, { password });
  }

  /** Note: Harper answers 200 ("updated 0 of 1 records") for a user that does not exist. */
  alterUser(username: string, fields: { password?: string; role?: string; active?: boolean }): Promise<unknown> {
    return this.call({ operation: 'alter_user', username, ...fields });
  }

  dropUser(username: string): Promise<unknown> {
    return this.call({ operation: 'drop_user', username });
  }

  async listUsers(): Promise<HarperUserSummary[]> {
    const users = await this.call<{ username: string; active: boolean; role?: { role?: string } | string }[]>({
      operation: 'list_users',
    });
    return users.map((user) => ({
      username: user.username,
      active: user.active,
      role: typeof user.role === 'string' ? user.role : (user.role?.role ?? '?'),
    }));
  }

  setGrants(grants: DeviceGrantsRecord): Promise<unknown> {
    return this.call({ operation: 'upsert', database: 'data', table: 'devices', records: [grants] });
  }

  removeGrants(username: string): Promise<unknown> {
    return this.call({ operation: 'delete', database: 'data', table: 'devices', ids: [username] });
  }

  async grantsOf(username: string): Promise<DeviceGrantsRecord | undefined> {
    const found = await this.call<DeviceGrantsRecord[]>({
      operation: 'search_by_id',
      database: 'data',
      table: 'devices',
      ids: [username],
      get_attributes: ['*'],
    });
    return found[0];
  }
}
