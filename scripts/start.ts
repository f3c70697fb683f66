/**
 * `npm start` (and `npm run dev` with --dev): runs Harper from node_modules with this component,
 * data in ./.harper (or $DATA_DIR), no prompts, and prints where everything is.
 *
 * Ports: HTTP_PORT (default 9926: REST, SSE, WebSocket, MQTT over WebSocket, dashboard),
 * MQTT_NETWORK_PORT (default 1883), OPERATIONSAPI_NETWORK_PORT (default 9925, admin only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveCredentials } from './credentials.js';
import { COMPONENT_DIR, startHarper, type HarperInstance } from './harper-process.js';

const dev = process.argv.includes('--dev');
const dataDir = resolve(process.env.DATA_DIR ?? join(COMPONENT_DIR, '.harper'));
const ports = {
  http: Number(process.env.HTTP_PORT ?? 9926),
  mqtt: Number(process.env.MQTT_NETWORK_PORT ?? 1883),
  operations: Number(process.env.OPERATIONSAPI_NETWORK_PORT ?? 9925),
};

function printSummary(harper: HarperInstance, credentialsFile: string, source: string): void {
  const host = `localhost:${ports.http}`;
  const { username, password } = harper.admin;
  const lines = [
    '',
    `Harper is running this component${dev ? ' in dev mode (reloads on change)' : ''}. Data: ${dataDir}`,
    '',
    `  Dashboard   http://${host}/`,
    `  REST        http://${host}/sensors/`,
    `  SSE         curl -N -u ${username}:<password> -H 'Accept: text/event-stream' http://${host}/sensors/`,
    `  WebSocket   ws://${host}/sensors/<id>`,
    `  MQTT        mqtt://localhost:${ports.mqtt}   (MQTT over WebSocket: ws://${host}/, subprotocol mqtt)`,
    `  Operations  http://localhost:${ports.operations}/ (admin only)`,
    '',
    source === 'generated'
      ? `  Admin user "${username}", password (shown once, saved in ${credentialsFile}):\n    ${password}`
      : source === 'file'
        ? `  Admin user "${username}"; password in ${credentialsFile}`
        : `  Admin user "${username}" from HDB_ADMIN_USERNAME / HDB_ADMIN_PASSWORD`,
    '',
    'Ctrl-C stops Harper.',
    '',
  ];
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const credentialsFile = join(dataDir, 'credentials.json');
  const installed = existsSync(join(dataDir, 'root', 'harperdb-config.yaml'));
  const admin = resolveCredentials(credentialsFile, installed);

  let compiler: ChildProcess | undefined;
  if (dev) {
    // Harper's dev mode reloads when dist/ changes; tsc --watch keeps dist/ current.
    compiler = spawn(process.execPath, [join(COMPONENT_DIR, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', COMPONENT_DIR, '--watch', '--preserveWatchOutput'], {
      stdio: 'inherit',
    });
  }

  console.log(`Starting Harper (${installed ? 'existing data' : 'first start: installing'})...`);
  const harper = await startHarper({
    dataDir,
    ports,
    admin,
    mode: dev ? 'dev' : 'run',
    onLine: (line) => console.log(line),
  });
  printSummary(harper, credentialsFile, admin.source);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping Harper...`);
    compiler?.kill('SIGTERM');
    void harper.stop('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await harper.exited;
  compiler?.kill('SIGTERM');
  console.log(`Harper stopped (${code}).`);
  process.exitCode = stopping ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
