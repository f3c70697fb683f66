/**
 * `npm run users -- <command>`: manage the people and devices that may use the backbone.
 * Talks to Harper's operations API as the admin; generated passwords are shown once.
 *
 * Several nodes: every change is applied to each of them (--cluster: the nodes `npm run cluster`
 * runs; or a comma-separated CLI_TARGET / --url). Harper's documentation says users are not
 * replicated; with a full replication join in 4.7.29 they were (the system database replicates),
 * so each change is written to be harmless when a node already has it: a user that already
 * exists on another node is brought to the same role and password, a removal tolerates a node
 * where it is gone already. Either way every node ends in the same state. Device grants live in
 * the `devices` table, which replicates, and are written to every node too (the same record).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readClusterFile } from '../launcher/cluster-nodes.js';
import { dataFolder, targetCredentials } from '../launcher/credentials.js';
import type { AdminCredentials } from '../launcher/harper-process.js';
import { OperationsClient, OperationsError, type HarperUserSummary } from '../launcher/operations-client.js';

const ROLES = ['device', 'viewer', 'operator', 'monitor'] as const;
type Role = (typeof ROLES)[number];
/** Device names become sensor ids (sensors/<name>), so they follow the sensor id rule. */
const DEVICE_NAME = /^[A-Za-z0-9_:-]{1,128}$/;
const USER_NAME = /^[A-Za-z0-9_.@:-]{1,128}$/;

const HELP = `Manage users and devices of the IoT backbone.

Usage: npm run users -- <command> [arguments] [options]

Commands:
  add <name> --role <device|viewer|operator|monitor>
                                               create a user; prints its password once
                                               (monitor: reads GET /metrics only)
        [--sensors id,id] [--signs id,id]       (devices) extra ids it may act for
  grant <name> [--sensors id,id] [--signs id,id]
                                               replace the extra ids a device may act for
  rotate <name>                                new password, printed once
  remove <name>                                delete the user (and a device's grants)
  list                                         users, roles and device grants

Options:
  --password-stdin        read the password from the first line of standard input instead of
                          generating one (add, rotate): printf '%s\n' "$PASS" | npm run users -- ...
  --password <password>   the same from the command line, where ps and shell history see it
  --url <url>[,<url>...]  operations API of each node (default: $CLI_TARGET, same form, or
                          http://localhost:$OPERATIONSAPI_NETWORK_PORT, port 9925)
  --cluster               every node of \`npm run cluster\` (its node list and saved admin)
  --json                  machine-readable output
  -h, --help              this help

Admin credentials: $CLI_TARGET_USERNAME/$CLI_TARGET_PASSWORD, else $HDB_ADMIN_USERNAME/$HDB_ADMIN_PASSWORD,
else the credentials npm start saved in .harper/credentials.json (or $DATA_DIR/credentials.json;
with --cluster, .harper/cluster/credentials.json). With several nodes, every change goes to each.

A device named 101 may write sensors/101 and read its own sign; grants add more ids for gateways.
`;

class UsageError extends Error {}

/** The operations API of every node to apply changes to, and the admin credentials for them. */
function targets(
  cluster: boolean,
  url: string | undefined,
): { urls: string[]; admin: AdminCredentials & { file?: string } } {
  const folder = cluster ? join(dataFolder(), 'cluster') : dataFolder();
  const urls = cluster
    ? readClusterFile(join(folder, 'nodes.json')).map((node) => node.operationsUrl)
    : (url || process.env.CLI_TARGET || `http://localhost:${process.env.OPERATIONSAPI_NETWORK_PORT || 9925}`)
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean);
  const file = join(folder, 'credentials.json');
  const admin = targetCredentials(file);
  if (!admin)
    throw new UsageError(
      `no admin credentials: set CLI_TARGET_USERNAME and CLI_TARGET_PASSWORD (or HDB_ADMIN_USERNAME and HDB_ADMIN_PASSWORD), or run ${cluster ? 'npm run cluster' : 'npm start'} once to create ${file}`,
    );
  return { urls, admin };
}

/**
 * Gives `username` this role and password on a node that may have it already (replicated from the
 * node the change was made on, or left from before): add, or alter when it exists.
 */
async function ensureUser(client: OperationsClient, username: string, role: string, password: string): Promise<void> {
  try {
    await client.addUser(username, role, password);
  } catch (error) {
    if (!(error instanceof OperationsError && error.status === 409)) throw error;
    await client.alterUser(username, { role, password, active: true });
  }
}

/** Drops `username` on a node where it may be gone already (the drop replicated there first). */
async function dropIfPresent(client: OperationsClient, username: string): Promise<void> {
  try {
    await client.dropUser(username);
  } catch (error) {
    if (!(error instanceof OperationsError && error.status === 404)) throw error;
  }
}

function idList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const ids = value
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  for (const id of ids)
    if (!/^[A-Za-z0-9_:-]+(\/[A-Za-z0-9_:-]+)*$/.test(id) || id.length > 128)
      throw new UsageError(`"${id}" is not a valid id`);
  return ids;
}

const generatePassword = () => randomBytes(18).toString('base64url');

/** The first line of standard input (a pipe or a file; a terminal would echo it, so not that). */
async function passwordFromStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new UsageError('--password-stdin reads a pipe or file, e.g. printf \'%s\\n\' "$PASS" | npm run users -- ...');
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  const password = text.split(/\r?\n/)[0];
  if (!password) throw new UsageError('--password-stdin: standard input held no password');
  return password;
}

async function findUser(client: OperationsClient, username: string): Promise<HarperUserSummary> {
  const user = (await client.listUsers()).find((candidate) => candidate.username === username);
  if (!user) throw new UsageError(`no user "${username}"`);
  return user;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string' },
      sensors: { type: 'string' },
      signs: { type: 'string' },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
      url: { type: 'string' },
      cluster: { type: 'boolean', default: false },
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
    if (!USER_NAME.test(name))
      throw new UsageError(`"${name}" is not a valid user name (letters, digits, _ . @ : -, at most 128)`);
    return name;
  };
  if (values.password !== undefined && values['password-stdin'])
    throw new UsageError('give --password or --password-stdin, not both');
  if (values.password !== undefined)
    console.error(
      'warning: --password is visible to other users of this machine (ps) and stays in your shell history; prefer --password-stdin',
    );
  const chosenPassword = values['password-stdin'] ? await passwordFromStdin() : values.password;
  const { urls, admin } = targets(values.cluster, values.url);
  const clients = urls.map((url) => new OperationsClient(url, admin));
  const [client, ...others] = clients;
  const everywhere = (task: (node: OperationsClient) => Promise<unknown>) => Promise.all(clients.map(task));
  const nodesNote = clients.length > 1 ? `\nApplied on ${clients.length} nodes: ${urls.join(', ')}` : '';
  const out = (text: string, data: unknown) => console.log(values.json ? JSON.stringify(data) : text + nodesNote);

  switch (command) {
    case 'add': {
      const username = needName();
      const role = values.role as Role | undefined;
      if (!role || !ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      if (role === 'device' && !DEVICE_NAME.test(username))
        throw new UsageError(`a device name is its sensor id: letters, digits, _ : - only ("${username}")`);
      const sensors = idList(values.sensors);
      const signs = idList(values.signs);
      if (role !== 'device' && (sensors || signs)) throw new UsageError('--sensors and --signs are for devices');
      const password = chosenPassword ?? generatePassword();
      // The first node decides whether the user is new (a duplicate is an error there).
      await client.addUser(username, role, password);
      await Promise.all(others.map((node) => ensureUser(node, username, role, password)));
      if (role === 'device')
        await everywhere((node) => node.setGrants({ id: username, sensors: sensors ?? [], signs: signs ?? [] }));
      out(
        `Added ${role} "${username}". Password (shown once, store it now):\n  ${password}` +
          (role === 'device'
            ? `\nIt may write sensors/${username}${sensors?.length ? ` and ${sensors.map((id) => `sensors/${id}`).join(', ')}` : ''}.`
            : ''),
        { username, role, password, sensors, signs },
      );
      return 0;
    }
    case 'grant': {
      const username = needName();
      const user = await findUser(client, username);
      if (user.role !== 'device') throw new UsageError(`"${username}" is a ${user.role}, not a device`);
      const current = await client.grantsOf(username);
      const grants = {
        id: username,
        sensors: idList(values.sensors) ?? current?.sensors ?? [],
        signs: idList(values.signs) ?? current?.signs ?? [],
      };
      await everywhere((node) => node.setGrants(grants));
      out(
        `Device "${username}" may act for sensors [${grants.sensors.join(', ')}] and signs [${grants.signs.join(', ')}] besides its own.`,
        grants,
      );
      return 0;
    }
    case 'rotate': {
      const username = needName();
      const password = chosenPassword ?? generatePassword();
      const user = await findUser(client, username);
      await everywhere((node) => ensureUser(node, username, user.role, password));
      // Rotating the admin that npm start saved: keep its file current, or the next start fails.
      if (admin.file && username === admin.username)
        writeFileSync(admin.file, JSON.stringify({ username, password }, null, 2) + '\n', { mode: 0o600 });
      out(`New password for "${username}" (shown once, store it now):\n  ${password}`, { username, password });
      return 0;
    }
    case 'remove': {
      const username = needName();
      await client.dropUser(username);
      await Promise.all(others.map((node) => dropIfPresent(node, username)));
      await everywhere((node) => node.removeGrants(username));
      out(`Removed "${username}".`, { username, removed: true });
      return 0;
    }
    case 'list': {
      const perNode = await Promise.all(clients.map((node) => node.listUsers()));
      const byName = new Map<string, HarperUserSummary>();
      for (const users of perNode)
        for (const user of users) if (!byName.has(user.username)) byName.set(user.username, user);
      const rows = await Promise.all(
        [...byName.values()].map(async (user) => {
          const missingOn = urls.filter(
            (_, i) => !perNode[i].some((other) => other.username === user.username && other.role === user.role),
          );
          return {
            ...user,
            grants: user.role === 'device' ? await client.grantsOf(user.username) : undefined,
            ...(missingOn.length ? { missingOn } : {}),
          };
        }),
      );
      out(
        rows
          .map(
            (row) =>
              `${row.username.padEnd(24)} ${row.role.padEnd(12)} ${row.active ? 'active' : 'inactive'}${row.grants ? `  sensors: ${[row.username, ...(row.grants.sensors ?? [])].join(', ')}` : ''}` +
              (row.missingOn ? `  NOT ON ${row.missingOn.join(', ')}` : ''),
          )
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
    else if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      console.error(`error: ${error.message} (try --help)`);
    else console.error(error);
    process.exit(
      error instanceof UsageError || (error as { code?: string }).code?.startsWith?.('ERR_PARSE_ARGS') ? 2 : 1,
    );
  },
);
