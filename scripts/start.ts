/**
 * `npm start` (and `npm run dev` with --dev): runs Harper from node_modules with this component,
 * data in ./.harper (or $DATA_DIR), no prompts, and prints where everything is.
 *
 * --dev keeps dist/ compiled with `tsc --watch` and restarts Harper (in `run` mode) when the
 * compiled code, the schema or the config changes; web/ is served from disk and needs no restart.
 * Harper's own `dev` mode is not used: it watches the whole component folder, including the data
 * in .harper/, and restarts itself in a loop as its own files change.
 *
 * Ports: HTTP_PORT (default 9926: REST, SSE, WebSocket, MQTT over WebSocket, dashboard),
 * MQTT_NETWORK_PORT (default 1883), OPERATIONSAPI_NETWORK_PORT (default 9925, admin only).
 * Demo devices (launcher/demo.ts) run unless --no-demo or DEMO=0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, watch } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { resolveCredentials } from '../launcher/credentials.js';
import { COMPONENT_DIR, basicAuth, startHarper, type HarperInstance } from '../launcher/harper-process.js';
import { startDemo, type Demo } from '../launcher/demo.js';

const dev = process.argv.includes('--dev');
const demo = !process.argv.includes('--no-demo') && process.env.DEMO !== '0';
const dataDir = resolve(process.env.DATA_DIR ?? join(COMPONENT_DIR, '.harper'));
const ports = {
  http: Number(process.env.HTTP_PORT ?? 9926),
  mqtt: Number(process.env.MQTT_NETWORK_PORT ?? 1883),
  operations: Number(process.env.OPERATIONSAPI_NETWORK_PORT ?? 9925),
};

function printSummary(harper: HarperInstance, credentialsFile: string, source: string, demoLine?: string): void {
  const host = `localhost:${ports.http}`;
  const { username, password } = harper.admin;
  const lines = [
    '',
    `Harper is running this component${dev ? ' (dev: restarts when the code changes)' : ''}. Data: ${dataDir}`,
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
    ...(demoLine ? ['', demoLine] : []),
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
    // tsc --watch keeps dist/ current; a change there restarts Harper (below). Wait for its first
    // pass so that pass's output does not trigger a restart.
    compiler = spawn(
      process.execPath,
      [
        join(COMPONENT_DIR, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        COMPONENT_DIR,
        '--watch',
        '--preserveWatchOutput',
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const output = createInterface({ input: compiler.stdout! });
    await new Promise<void>((resolve) =>
      output.on('line', (line) => {
        if (line.trim()) console.log(`tsc: ${line}`);
        if (/Found \d+ errors?/.test(line)) resolve();
      }),
    );
  }

  console.log(`Starting Harper (${installed ? 'existing data' : 'first start: installing'})...`);
  const launch = () => startHarper({ dataDir, ports, admin, onLine: (line) => console.log(line) });
  let harper = await launch();

  // If this process ends for any reason, Harper must not outlive it (an orphaned Harper keeps the
  // ports and, writing to a closed pipe, spins on EPIPE errors).
  process.on('exit', () => harper.stop('SIGTERM'));
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);

  /**
   * Tells Harper's subscribers that it is about to stop (lib/resources/server-notice.ts), then gives the notice a
   * moment to reach them; Harper itself would drop them without a word.
   */
  const announceStop = async (message: string) => {
    try {
      await fetch(`${harper.httpUrl}/server-notice`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basicAuth(admin) },
        body: JSON.stringify({ message }),
        signal: AbortSignal.timeout(2_000),
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
    } catch {
      // Harper not answering: stop it anyway.
    }
  };

  let stopping = false;
  /** Set while a dev restart runs; changes during it queue one more restart, never a second Harper. */
  let restarting: Promise<void> | undefined;
  let changedAgain = false;
  const restart = async () => {
    do {
      changedAgain = false;
      console.log('Change detected: restarting Harper...');
      await announceStop('the server is restarting');
      await harper.stop('SIGTERM');
      if (stopping) return;
      harper = await launch();
      console.log(`Harper restarted: http://localhost:${ports.http}/`);
    } while (changedAgain && !stopping);
  };
  if (dev) {
    let debounce: NodeJS.Timeout | undefined;
    const onChange = () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        if (restarting) {
          changedAgain = true;
          return;
        }
        restarting = restart()
          .catch((error: unknown) => console.error('Restart failed:', error instanceof Error ? error.message : error))
          .finally(() => (restarting = undefined));
      }, 500);
    };
    watch(join(COMPONENT_DIR, 'dist'), { recursive: true }, (_event, file) => file?.endsWith('.js') && onChange());
    for (const file of ['schema.graphql', 'config.yaml']) watch(join(COMPONENT_DIR, file), onChange);
  }

  let devices: Demo | undefined;
  if (demo) {
    try {
      devices = await startDemo({
        dataDir,
        admin,
        operationsUrl: `http://127.0.0.1:${ports.operations}`,
        mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
        httpUrl: `http://127.0.0.1:${ports.http}`,
      });
    } catch (error) {
      console.error(`Demo devices not started: ${(error as Error).message}`);
    }
  }
  process.on('exit', () => devices?.stop());

  // Announce only once everything, dev watchers and demo devices included, is in place.
  printSummary(harper, credentialsFile, admin.source, devices?.describe());

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping Harper...`);
    compiler?.kill('SIGTERM');
    devices?.stop();
    void announceStop('the server is stopping').then(() => harper.stop('SIGTERM'));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  for (;;) {
    const code = await harper.exited;
    if (restarting) {
      await restarting;
      if (!stopping) continue;
    }
    compiler?.kill('SIGTERM');
    console.log(`Harper stopped (${code}).`);
    // Exit explicitly: the dev file watchers would otherwise keep this process alive.
    process.exit(stopping ? 0 : 1);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
