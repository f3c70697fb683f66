/**
 * Admin credentials for `npm start`: from HDB_ADMIN_USERNAME/HDB_ADMIN_PASSWORD when both are set,
 * otherwise from the credentials file beside the data, otherwise generated once and saved there
 * (readable only by its owner). Harper fixes the admin password at install, so the file lives and
 * dies with the data folder.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AdminCredentials } from './harper-process.js';

export interface ResolvedCredentials extends AdminCredentials {
  source: 'environment' | 'file' | 'generated';
}

export function resolveCredentials(file: string, installed: boolean): ResolvedCredentials {
  const { HDB_ADMIN_USERNAME: username, HDB_ADMIN_PASSWORD: password } = process.env;
  if (username && password) return { username, password, source: 'environment' };
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as AdminCredentials;
    return { username: saved.username, password: saved.password, source: 'file' };
  }
  if (installed) {
    throw new Error(
      `Harper is already installed in this data folder but ${file} is missing.\n` +
        'Set HDB_ADMIN_USERNAME and HDB_ADMIN_PASSWORD to the admin credentials, or delete the data folder to start afresh.',
    );
  }
  const generated: AdminCredentials = { username: 'admin', password: randomBytes(24).toString('base64url') };
  writeFileSync(file, JSON.stringify(generated, null, 2) + '\n', { mode: 0o600 });
  return { ...generated, source: 'generated' };
}
