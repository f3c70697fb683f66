/**
 * Starts and stops Harper from node_modules with this component, without prompts, in a folder of
 * its own. Used by `npm start`, the test harness, the benchmark and the cluster script, so every one
 * of them runs Harper the same way.
 *
 * Harper facts this relies on (harperdb 4.7.29):
 * - a non-interactive install needs TC_AGREEMENT=yes plus HDB_ADMIN_USERNAME/HDB_ADMIN_PASSWORD;
 *   once ROOTPATH holds an install, the admin variables are ignored;
 * - Harper writes a boot file to $HOME/.harperdb naming its root, so each instance gets its own
 *   HOME or it would take over (or be taken over by) a user's global Harper;
 * - any config key can be set as SECTION_KEY in the environment, and "null" removes a listener;
 * - `run` is the production entry point; `dev` reloads on file changes but always opens a Node
 *   inspector on 127.0.0.1:9229.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MAX_WIRE_BYTES } from '../lib/rules/limits.js';

/** The repository root: the component folder Harper loads (this file runs from launcher/ or dist/launcher/). */
const parentDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const COMPONENT_DIR = basename(parentDir) === 'dist' ? resolve(parentDir, '..') : parentDir;

export interface AdminCredentials {
  username: string;
  password: string;
}

/** The `Authorization` header value for HTTP Basic with these credentials. */
export function basicAuth(credentials: AdminCredentials): string {
  return 'Basic ' + Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
}

export interface HarperPorts {
  http: number;
  mqtt: number;
  operations: number;
}

export interface HarperOptions {
  /** Holds Harper's root (`root/`) and its private HOME (`home/`). */
  dataDir: string;
  ports: HarperPorts;
  admin: AdminCredentials;
  /**
   * The component to run (default: this repository). `null` starts a bare Harper with no component
   * of ours, as a hosted or self-managed instance is before anything is deployed to it; it also
   * runs what was deployed into its own `components/` folder.
   */
  componentDir?: string | null;
  mode?: 'run' | 'dev';
  /** Worker threads; 1 gave lower latency and memory than 2 on a 2-core machine. */
  threads?: number;
  /** Extra environment for Harper (overrides ours). */
  env?: Record<string, string>;
  /** Every line Harper prints after start-up (its banner and install prompts are dropped). */
  onLine?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface HarperInstance {
  pid: number;
  ports: HarperPorts;
  admin: AdminCredentials;
  rootPath: string;
  httpUrl: string;
  mqttUrl: string;
  /** Resolves with the exit code (or signal name) when the process has ended. */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export const HARPER_BIN = join(COMPONENT_DIR, 'node_modules', 'harperdb', 'bin', 'harperdb.js');

/**
 * Environment variables that would weaken authentication if Harper saw them. Harper 4.7.29's HTTP
 * layer reads AUTHENTICATION_AUTHORIZELOCAL before its configuration and treats ANY non-empty
 * string as true ("false" included), which makes every local client a super user on REST and the
 * operations API; DEV_MODE does the same where the configuration leaves authorizeLocal unset (and
 * opens a Node inspector on 9229); DEFAULTS_MODE=dev installs with dev defaults; the other
 * AUTHENTICATION_* keys, MQTT_REQUIREAUTHENTICATION and the operations API's CORS keys change who is
 * trusted or from where; THREADS_DEBUG* and an --inspect in NODE_OPTIONS open a Node inspector,
 * which is code execution for anyone who reaches its port. The settings we want are set through
 * HARPER_SET_CONFIG below, never through these.
 */
const WEAKENING_ENV =
  /^(AUTHENTICATION_.*|DEV_MODE|DEFAULTS_MODE|MQTT_REQUIREAUTHENTICATION|OPERATIONSAPI_NETWORK_CORS.*|THREADS_DEBUG.*|LOCALSTUDIO_.*)$/i;

function weakens(name: string, value: string | undefined): boolean {
  if (WEAKENING_ENV.test(name)) return true;
  return name.toUpperCase() === 'NODE_OPTIONS' && /--inspect/.test(value ?? '');
}

let droppedNoticeShown = false;

/**
 * The environment a Harper process (server or CLI) may inherit: ours minus every variable that
 * would weaken authentication. Says so once per process, in one line, when it drops any.
 */
export function harperSafeEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const safe: NodeJS.ProcessEnv = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (weakens(name, value)) dropped.push(name);
    else safe[name] = value;
  }
  if (dropped.length > 0 && !droppedNoticeShown) {
    droppedNoticeShown = true;
    console.warn(
      `Not passed to Harper (it would weaken authentication; authorizeLocal stays off): ${dropped.sort().join(', ')}`,
    );
  }
  return safe;
}

/** A user's own HARPER_SET_CONFIG merged under ours: theirs may add settings, not undo ours. */
function mergedSetConfig(ours: Readonly<Record<string, Readonly<Record<string, unknown>>>>): string {
  let theirs: Record<string, unknown>;
  try {
    theirs = JSON.parse(process.env.HARPER_SET_CONFIG ?? '{}') as Record<string, unknown>;
  } catch {
    throw new Error('HARPER_SET_CONFIG is not valid JSON');
  }
  const merged: Record<string, unknown> = { ...theirs };
  for (const [section, values] of Object.entries(ours)) {
    const mine = theirs[section];
    merged[section] = { ...(mine && typeof mine === 'object' ? mine : {}), ...values };
  }
  return JSON.stringify(merged);
}

/**
 * Harper settings the component relies on, for every instance we start and (scripts/deploy.ts)
 * every instance we deploy to:
 * - authorizeLocal must be set through the nested config: the HTTP layer reads the string "false"
 *   from AUTHENTICATION_AUTHORIZELOCAL as true, which would make every local client a super user;
 * - REST bodies (only those without a Content-Length reach Harper's reader: lib/rules/limits.ts refuses
 *   the others first) are cut off at MAX_WIRE_BYTES instead of Harper's 10 MB default. Harper 4.7
 *   has no setting for the size of an MQTT packet or of a WebSocket message: lib/mqtt/wire-limits.ts
 *   limits those. The operations API inherits http's limit unless it has its own, and deploys
 *   send whole packages through it: it keeps Harper's default for it (1 GiB), stated explicitly;
 * - the studio is switched off: nothing of ours needs it;
 * - write prefetching is off: it reads the pages of every index entry a write is about to change,
 *   on the worker thread, which was a fifth of the CPU time of each stored reading (its two index
 *   entries) and buys nothing while the indexes are in memory (bench/README.md).
 */
/** Harper's own default for the operations API's bodies (admin only: deploys, bulk loads). */
export const OPERATIONS_BODY_BYTES = 1024 * 1024 * 1024;

export const HARPER_SETTINGS = {
  authentication: { authorizeLocal: false },
  mqtt: { requireAuthentication: true },
  http: { maxRequestBodySize: MAX_WIRE_BYTES },
  // The operations API's CORS default reflects any Origin; nothing of ours calls it from a page.
  operationsApi: { network: { maxRequestBodySize: OPERATIONS_BODY_BYTES, cors: false } },
  localStudio: { enabled: false },
  storage: { prefetchWrites: false },
} as const;

/**
 * Settings that make every instance we start secure and self-contained. TLS listeners and the
 * thread count stay open to the user's environment (HTTP_SECUREPORT=9927, MQTT_NETWORK_SECUREPORT=8883,
 * TLS_CERTIFICATE, ...); the ports, the isolation and the security settings do not.
 */
function harperEnvironment(options: HarperOptions, rootPath: string, home: string): Record<string, string> {
  const { ports, admin } = options;
  const env = process.env;
  return {
    ROOTPATH: rootPath,
    HOME: home,
    TC_AGREEMENT: 'yes',
    HDB_ADMIN_USERNAME: admin.username,
    HDB_ADMIN_PASSWORD: admin.password,
    HTTP_PORT: String(ports.http),
    HTTP_SECUREPORT: env.HTTP_SECUREPORT ?? 'null',
    MQTT_NETWORK_PORT: String(ports.mqtt),
    MQTT_NETWORK_SECUREPORT: env.MQTT_NETWORK_SECUREPORT ?? 'null',
    OPERATIONSAPI_NETWORK_PORT: String(ports.operations),
    OPERATIONSAPI_NETWORK_SECUREPORT: env.OPERATIONSAPI_NETWORK_SECUREPORT ?? 'null',
    REPLICATION_SECUREPORT: env.REPLICATION_SECUREPORT ?? 'null',
    THREADS_COUNT: String(options.threads ?? env.THREADS_COUNT ?? 1),
    LOGGING_STDSTREAMS: 'true',
    HARPER_SET_CONFIG: mergedSetConfig(HARPER_SETTINGS),
  };
}

/** The pid of a Harper still running from this root, if any (two on one root corrupt each other). */
function runningHarper(rootPath: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(rootPath, 'hdb.pid'), 'utf8').trim());
    if (!pid) return undefined;
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('harperdb') ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function startHarper(options: HarperOptions): Promise<HarperInstance> {
  const rootPath = resolve(options.dataDir, 'root');
  const home = resolve(options.dataDir, 'home');
  const running = runningHarper(rootPath);
  if (running)
    throw new Error(
      `Harper is already running from ${options.dataDir} (pid ${running}); stop it before starting another.`,
    );
  mkdirSync(home, { recursive: true });
  // options.env is the caller's own (tests, the cluster script): it is trusted, the inherited one is not.
  const env = { ...harperSafeEnvironment(process.env), ...harperEnvironment(options, rootPath, home), ...options.env };
  const bare = options.componentDir === null;
  const args = [HARPER_BIN, options.mode ?? 'run', ...(bare ? [] : [options.componentDir ?? COMPONENT_DIR])];
  // A bare instance starts from its own folder: started from an application folder, Harper warns
  // that we may have meant to run that application.
  const child = spawn(process.execPath, args, { env, cwd: bare ? home : undefined, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | string>((done) =>
    child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown')),
  );
  const recent: string[] = [];
  let started = false;
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      recent.push(line);
      if (recent.length > 40) recent.shift();
      // Harper prints a banner, install prompts and two "successfully started" lines; callers
      // only want what comes after.
      if (/successfully started/.test(line)) started = true;
      else if (started) options.onLine?.(line);
    });
  }
  const instance: HarperInstance = {
    pid: child.pid!,
    ports: options.ports,
    admin: options.admin,
    rootPath,
    httpUrl: `http://127.0.0.1:${options.ports.http}`,
    mqttUrl: `mqtt://127.0.0.1:${options.ports.mqtt}`,
    exited,
    stop: (signal = 'SIGTERM') => stopChild(child, exited, signal),
  };
  try {
    await waitUntilServing(instance, exited, options.startTimeoutMs ?? 60_000, bare);
  } catch (error) {
    await instance.stop('SIGKILL');
    throw new Error(`${(error as Error).message}\nLast lines from Harper:\n${recent.join('\n')}`, { cause: error });
  }
  return instance;
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<number | string>,
  signal: NodeJS.Signals,
): Promise<number | string> {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ready means: the component's page is served over HTTP (for a bare instance, any HTTP answer: it
 * has no page) and the MQTT listener accepts.
 */
async function waitUntilServing(
  instance: HarperInstance,
  exited: Promise<number | string>,
  timeoutMs: number,
  bare: boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone: number | string | undefined;
  void exited.then((code) => (gone = code));
  while (Date.now() < deadline) {
    if (gone !== undefined) throw new Error(`Harper exited during start-up (${gone})`);
    if ((await httpAnswers(`${instance.httpUrl}/`, bare)) && (await tcpAccepts(instance.ports.mqtt))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Harper did not serve ${instance.httpUrl} within ${timeoutMs} ms`);
}

async function httpAnswers(url: string, anyStatus = false): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return anyStatus || response.status === 200;
  } catch {
    return false;
  }
}

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Listens on a loopback port for a moment: the port it got (0 = any the OS picks), or undefined if taken. */
function tryPort(port: number): Promise<number | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : undefined));
    });
  });
}

/**
 * Ports for test workers. Test files run side by side, each choosing ports and starting a Harper a
 * moment later. Ports the kernel hands out for `listen(0)` come from the range it also uses for
 * outgoing connections, and two processes can be handed the same port between choosing it and
 * binding it: one Harper then answers another's clients. So each vitest worker (VITEST_POOL_ID
 * numbers them from 1; the main process has none) takes ports from its own block, below the
 * kernel's ephemeral range (32768 and up on Linux), checking each is free.
 */
const WORKER_PORTS_FROM = 20_000;
const WORKER_BLOCK = 500;
const WORKER_BLOCKS = 25;
const workerBlock = /^\d+$/.test(process.env.VITEST_POOL_ID ?? '')
  ? Number(process.env.VITEST_POOL_ID) % WORKER_BLOCKS
  : undefined;
let nextInBlock = Math.floor(Math.random() * WORKER_BLOCK);

/** A loopback port nothing listens on right now: the worker's next free one, or one the OS picks. */
export async function freePort(): Promise<number> {
  if (workerBlock !== undefined) {
    for (let tried = 0; tried < WORKER_BLOCK; tried++) {
      const port = await tryPort(WORKER_PORTS_FROM + workerBlock * WORKER_BLOCK + (nextInBlock++ % WORKER_BLOCK));
      if (port !== undefined) return port;
    }
  }
  const port = await tryPort(0);
  if (port === undefined) throw new Error('no free loopback port');
  return port;
}
