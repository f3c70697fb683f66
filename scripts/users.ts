/**
 * `npm run users -- <command>`: manage the people and devices that may use the backbone.
 * Talks to Harper's operations API as the admin; generated passwords are shown once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { COMPONENT_DIR, type AdminCredentials } from './harper-process.js';
import { OperationsClient, OperationsError } from './operations-client.js';

const ROLES = ['device', 'viewer', 'operator'] as const;
type Role = (typeof ROLES)[number];
/** Device names become sensor ids (sensors/<name>), so they follow the sensor id rule. */
const DEVICE_NAME = /^[A-Za-z0-9_:-]{1,128}$/;
const USER_NAME = /^[A-Za-z0-9_.@:-]{1,128}$/;

const HELP = `Manage users and devices of the IoT backbone.

Usage: npm run users -- <command> [arguments] [options]

Commands:
  add <name> --role <device|viewer|operator>   create a user; prints its password once
        [--sensors id,id] [--signs id,id]       (devices) extra ids it may act for
  grant <name> [--sensors id,id] [--signs id,id]
                                               replace the extra ids a device may act for
  rotate <name>                                new password, printed once
  remove <name>                                delete the user (and a device's grants)
  list                                         users, roles and device grants

Options:
  --password <password>   use this password instead of generating one (add, rotate)
  --url <url>             operations API (default: $CLI_TARGET, or http://localhost:$OPERATIONSAPI_NETWORK_PORT, port 9925)
  --json                  machine-readable output
  -h, --help              this help

Admin credentials: $CLI_TARGET_USERNAME/$CLI_TARGET_PASSWORD, else $HDB_ADMIN_USERNAME/$HDB_ADMIN_PASSWORD,
else the credentials npm start saved in .harper/credentials.json (or $DATA_DIR/credentials.json).

A device named 101 may write sensors/101 and read its own sign; grants add more ids for gateways.
`;

class UsageError extends Error {}

/** The admin credentials, and the file they came from when npm start saved them. */
function adminCredentials(): AdminCredentials & { file?: string } {
  const env = process.env;
  if (env.CLI_TARGET_USERNAME && env.CLI_TARGET_PASSWORD) return { username: env.CLI_TARGET_USERNAME, password: env.CLI_TARGET_PASSWORD };
  if (env.HDB_ADMIN_USERNAME && env.HDB_ADMIN_PASSWORD) return { username: env.HDB_ADMIN_USERNAME, password: env.HDB_ADMIN_PASSWORD };
  const file = join(resolve(env.DATA_DIR ?? join(COMPONENT_DIR, '.harper')), 'credentials.json');
  if (existsSync(file)) return { ...(JSON.parse(readFileSync(file, 'utf8')) as AdminCredentials), file };
  throw new UsageError(`no admin credentials: set CLI_TARGET_USERNAME and CLI_TARGET_PASSWORD (or HDB_ADMIN_USERNAME and HDB_ADMIN_PASSWORD), or run npm start once to create ${file}`);
}

function operationsUrl(explicit: string | undefined): string {
  return explicit || process.env.CLI_TARGET || `http://localhost:${process.env.OPERATIONSAPI_NETWORK_PORT || 9925}`;
}

function idList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const ids = value.split(',').map((id) => id.trim()).filter(Boolean);
  for (const id of ids) if (!/^[A-Za-z0-9_:-]+(\/[A-Za-z0-9_:-]+)*$/.test(id) || id.length > 128) throw new UsageError(`"${id}" is not a valid id`);
  return ids;
}

const generatePassword = () => randomBytes(18).toString('base64url');

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string' },
      sensors: { type: 'string' },
      signs: { type: 'string' },
      password: { type: 'string' },
      url: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, name] = positionals;
  if (values.help || !command) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const needName = () => {
    if (!name) throw new UsageError(`"${command}" needs a user name`);
    if (!USER_NAME.test(name)) throw new UsageError(`"${name}" is not a valid user name (letters, digits, _ . @ : -, at most 128)`);
    return name;
  };
  const admin = adminCredentials();
  const client = new OperationsClient(operationsUrl(values.url), admin);
  const out = (text: string, data: unknown) => console.log(values.json ? JSON.stringify(data) : text);

  switch (command) {
    case 'add': {
      const username = needName();
      const role = values.role as Role | undefined;
      if (!role || !ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      if (role === 'device' && !DEVICE_NAME.test(username)) throw new UsageError(`a device name is its sensor id: letters, digits, _ : - only ("${username}")`);
      const sensors = idList(values.sensors);
      const signs = idList(values.signs);
      if (role !== 'device' && (sensors || signs)) throw new UsageError('--sensors and --signs are for devices');
      const password = values.password ?? generatePassword();
      await client.addUser(username, role, password);
      if (role === 'device') await client.setGrants({ id: username, sensors: sensors ?? [], signs: signs ?? [] });
      out(
        `Added ${role} "${username}". Password (shown once, store it now):\n  ${password}` +
          (role === 'device' ? `\nIt may write sensors/${username}${sensors?.length ? ` and ${sensors.map((id) => `sensors/${id}`).join(', ')}` : ''}.` : ''),
        { username, role, password, sensors, signs },
      );
      return 0;
    }
    case 'grant': {
      const username = needName();
      const users = await client.listUsers();
      const user = users.find((candidate) => candidate.username === username);
      if (!user) throw new UsageError(`no user "${username}"`);
      if (user.role !== 'device') throw new UsageError(`"${username}" is a ${user.role}, not a device`);
      const current = await client.grantsOf(username);
      const grants = { id: username, sensors: idList(values.sensors) ?? current?.sensors ?? [], signs: idList(values.signs) ?? current?.signs ?? [] };
      await client.setGrants(grants);
      out(`Device "${username}" may act for sensors [${grants.sensors.join(', ')}] and signs [${grants.signs.join(', ')}] besides its own.`, grants);
      return 0;
    }
    case 'rotate': {
      const username = needName();
      const password = values.password ?? generatePassword();
      await client.setPassword(username, password);
      // Rotating the admin that npm start saved: keep its file current, or the next start fails.
      if (admin.file && username === admin.username) writeFileSync(admin.file, JSON.stringify({ username, password }, null, 2) + '\n', { mode: 0o600 });
      out(`New password for "${username}" (shown once, store it now):\n  ${password}`, { username, password });
      return 0;
    }
    case 'remove': {
      const username = needName();
      await client.dropUser(username);
      await client.removeGrants(username);
      out(`Removed "${username}".`, { username, removed: true });
      return 0;
    }
    case 'list': {
      const users = await client.listUsers();
      const rows = await Promise.all(
        users.map(async (user) => ({ ...user, grants: user.role === 'device' ? await client.grantsOf(user.username) : undefined })),
      );
      out(
        rows
          .map((row) => `${row.username.padEnd(24)} ${row.role.padEnd(12)} ${row.active ? 'active' : 'inactive'}${row.grants ? `  sensors: ${[row.username, ...(row.grants.sensors ?? [])].join(', ')}` : ''}`)
          .join('\n'),
        rows,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}" (try --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError || error instanceof OperationsError) console.error(`error: ${error.message}`);
    else if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) console.error(`error: ${error.message} (try --help)`);
    else console.error(error);
    process.exit(error instanceof UsageError || (error as { code?: string }).code?.startsWith?.('ERR_PARSE_ARGS') ? 2 : 1);
  },
);
