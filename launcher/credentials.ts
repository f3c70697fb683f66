/**
 * Admin credentials for `npm start`: from HDB_ADMIN_USERNAME/HDB_ADMIN_PASSWORD when both are set,
 * otherwise from the credentials file beside the data, otherwise generated once and saved there
 * (readable only by its owner). Harper fixes the admin password at install, so the file lives and
 * dies with the data folder.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { COMPONENT_DIR, type AdminCredentials } from './harper-process.js';

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

/** The folder npm start keeps its data in (`npm run cluster` uses its `cluster/` subfolder). */
export function dataFolder(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.DATA_DIR ?? join(COMPONENT_DIR, '.harper'));
}

/**
 * Admin credentials for the command-line tools that talk to a Harper (users, deploy), following
 * Harper's own CLI conventions: CLI_TARGET_USERNAME/CLI_TARGET_PASSWORD, else
 * HDB_ADMIN_USERNAME/HDB_ADMIN_PASSWORD, else the file npm start (or npm run cluster) saved, which
 * is returned too so that rotating the admin can keep it current.
 */
export function targetCredentials(
  savedFile: string,
  env: NodeJS.ProcessEnv = process.env,
): (AdminCredentials & { file?: string }) | undefined {
  if (env.CLI_TARGET_USERNAME && env.CLI_TARGET_PASSWORD)
    return { username: env.CLI_TARGET_USERNAME, password: env.CLI_TARGET_PASSWORD };
  if (env.HDB_ADMIN_USERNAME && env.HDB_ADMIN_PASSWORD)
    return { username: env.HDB_ADMIN_USERNAME, password: env.HDB_ADMIN_PASSWORD };
  if (existsSync(savedFile))
    return { ...(JSON.parse(readFileSync(savedFile, 'utf8')) as AdminCredentials), file: savedFile };
  return undefined;
}
