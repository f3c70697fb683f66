/**
 * What every device simulator shares: the broker URL and credentials, from options or the
 * environment (DEVICE_URL, DEVICE_USERNAME, DEVICE_PASSWORD: a password on the command line would
 * show in `ps`), and a tidy MQTT connection.
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface ConnectionOptions {
  url: string;
  username: string;
  password: string;
  clientId: string;
}

export const CONNECTION_HELP = `Connection:
  --url <url>            broker (default $DEVICE_URL or mqtt://localhost:1883; ws://host:9926/ for MQTT over WebSocket)
  --username <name>      device user (default $DEVICE_USERNAME)
  --password <password>  its password (default $DEVICE_PASSWORD; prefer the variable)`;

export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export class UsageError extends Error {}

/**
 * `purpose` names the connection in its MQTT client id, `<username>.<purpose>-<pid>`: the server
 * accepts a device's client ids only under its own name (lib/mqtt/connections.ts).
 */
export function connectionFrom(
  values: { url?: string; username?: string; password?: string },
  purpose: string,
): ConnectionOptions {
  const url = values.url ?? process.env.DEVICE_URL ?? 'mqtt://localhost:1883';
  const username = values.username ?? process.env.DEVICE_USERNAME;
  const password = values.password ?? process.env.DEVICE_PASSWORD;
  if (!username || !password)
    throw new UsageError(
      'credentials needed: --username/--password or DEVICE_USERNAME/DEVICE_PASSWORD (create a device with npm run users -- add <name> --role device)',
    );
  return { url, username, password, clientId: `${username}.${purpose}-${process.pid}` };
}

export async function connect(options: ConnectionOptions): Promise<MqttClient> {
  try {
    return await mqtt.connectAsync(options.url, {
      username: options.username,
      password: options.password,
      clientId: options.clientId,
      protocolVersion: 5,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
    });
  } catch (error) {
    throw new UsageError(`cannot connect to ${options.url} as ${options.username}: ${(error as Error).message}`);
  }
}

/** Runs a simulator's main, turning usage errors into a message and exit code 2. */
export function run(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(
      error instanceof UsageError || (error as { code?: string }).code?.startsWith?.('ERR_PARSE_ARGS') ? 2 : 1,
    );
  });
}

export function positiveNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new UsageError(`--${name} must be a positive number`);
  return number;
}
