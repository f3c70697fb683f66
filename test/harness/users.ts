/** Users for tests, created through the operations API as the admin (as the users CLI does). */
import { randomBytes } from 'node:crypto';
import { OperationsClient } from '../../launcher/operations-client.js';
import type { AdminCredentials } from '../../launcher/harper-process.js';
import type { HarperEndpoints } from './harper.js';

export type TestRole = 'device' | 'viewer' | 'operator' | 'monitor';

export function operations(harper: HarperEndpoints): OperationsClient {
  return new OperationsClient(harper.operationsUrl, harper.admin);
}

export async function createUser(
  harper: HarperEndpoints,
  role: TestRole,
  username: string,
  grants: { sensors?: string[]; signs?: string[] } = {},
): Promise<AdminCredentials> {
  const password = randomBytes(12).toString('hex');
  const client = operations(harper);
  await client.addUser(username, role, password);
  if (role === 'device')
    await client.setGrants({ id: username, sensors: grants.sensors ?? [], signs: grants.signs ?? [] });
  return { username, password };
}
