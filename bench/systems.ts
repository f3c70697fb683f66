/**
 * The systems under test, each started on free loopback ports and stopped after its scenarios:
 * (a) Mosquitto, (b) the stack (Mosquitto + bench/stack/bridge.ts), (c) this component, (d) a
 * plain Harper table, (e) that table with a history; and the /proc readings of their memory and
 * CPU time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { SystemKey } from './report.js';
import { inspectorEnvironment } from './profile.js';
import { COMPONENT_DIR, basicAuth, freePort, startHarper, type AdminCredentials } from '../launcher/harper-process.js';

export interface RunningSystem {
  key: SystemKey;
  mqttUrl: string;
  /** Base URL of the SSE endpoint /sensors/, absent for Mosquitto alone. */
  sseBase?: string;
  /** Harper only: WebSocket subscriptions on the same port. */
  ws?: boolean;
  auth?: AdminCredentials;
  /** With --profile: the first worker thread's inspector port. */
  inspectorPort?: number;
  /** Processes whose RSS is the system's memory. */
  pids: () => number[];
  stop: () => Promise<void>;
}

export function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((done) =>
    child.exitCode !== null || child.signalCode !== null ? done() : child.once('exit', () => done()),
  );
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exitOf(child);
  clearTimeout(timer);
}

async function startMosquitto(workDir: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = join(workDir, `mosquitto-${port}.conf`);
  // A broker alone: anonymous on loopback, nothing persisted; queues long enough that a slow
  // subscriber is not silently dropped at the default of 1000 queued messages.
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`,
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  const failed = new Promise<never>((_, fail) =>
    child.once('error', (e) =>
      fail(new Error(`cannot run mosquitto (${e.message}); install it: apt-get install mosquitto`)),
    ),
  );
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${err}`);
    if (await Promise.race([tcpAccepts(port), failed])) return { child, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopChild(child);
  throw new Error(`mosquitto did not listen on ${port}: ${err}`);
}

export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU time (ms) a process has used, user and system, from /proc/<pid>/stat. */
export function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** Linux's clock ticks per second for /proc times (USER_HZ, 100 on every common platform). */
const CLOCK_TICKS = 100;

export async function startSystem(
  key: SystemKey,
  workDir: string,
  threads: number,
  profileDir?: string,
): Promise<RunningSystem> {
  if (key === 'mosquitto') {
    const { child, port } = await startMosquitto(workDir);
    return { key, mqttUrl: `mqtt://127.0.0.1:${port}`, pids: () => [child.pid!], stop: () => stopChild(child) };
  }
  if (key === 'stack') {
    const broker = await startMosquitto(workDir);
    const httpPort = await freePort();
    const dbFile = join(workDir, `stack-${httpPort}.db`);
    const bridgeJs = resolve(COMPONENT_DIR, 'dist', 'bench', 'stack', 'bridge.js');
    const bridge = spawn(
      process.execPath,
      [bridgeJs, '--mqtt', `mqtt://127.0.0.1:${broker.port}`, '--port', String(httpPort), '--db', dbFile],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error('the stack bridge did not start within 15 s')), 15_000);
      createInterface({ input: bridge.stdout! }).on('line', (line) => {
        if (line.startsWith('ready')) {
          clearTimeout(timer);
          ready();
        }
      });
      bridge.once('exit', (code) => fail(new Error(`the stack bridge exited (${code})`)));
    }).catch(async (error) => {
      await stopChild(bridge);
      await stopChild(broker.child);
      throw error;
    });
    return {
      key,
      mqttUrl: `mqtt://127.0.0.1:${broker.port}`,
      sseBase: `http://127.0.0.1:${httpPort}`,
      pids: () => [broker.child.pid!, bridge.pid!],
      stop: async () => {
        await stopChild(bridge);
        await stopChild(broker.child);
        for (const suffix of ['', '-wal', '-shm']) rmSync(dbFile + suffix, { force: true });
      },
    };
  }
  // Harper: this component, or a generated one (the plain table, or the table with a history).
  const componentDir =
    key === 'plain' ? plainTableComponent(workDir) : key === 'history' ? tableWithHistoryComponent(workDir) : undefined;
  const dataDir = mkdtempSync(join(workDir, `harper-${key}-`));
  const ports = { http: await freePort(), mqtt: await freePort(), operations: await freePort() };
  const admin = { username: 'admin', password: randomBytes(16).toString('hex') };
  // Worker i's inspector listens on inspectorPort + i (a free port and, by and large, those after it).
  const inspectorPort = profileDir ? await freePort() : undefined;
  const env = { LOGGING_LEVEL: 'warn', ...(inspectorPort ? inspectorEnvironment(inspectorPort) : {}) };
  const instance = await startHarper({ dataDir, ports, admin, componentDir, threads, env });
  if (key === 'component')
    await assertComponentLoaded(instance.httpUrl, admin).catch(async (error: unknown) => {
      await instance.stop();
      throw error;
    });
  const pid = (): number => {
    try {
      return Number(readFileSync(join(instance.rootPath, 'hdb.pid'), 'utf8').trim()) || instance.pid;
    } catch {
      return instance.pid;
    }
  };
  return {
    key,
    mqttUrl: instance.mqttUrl,
    sseBase: instance.httpUrl,
    ws: true,
    auth: admin,
    inspectorPort,
    pids: () => [...new Set([pid(), instance.pid])],
    stop: async () => {
      await instance.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Fails unless this component's resource code is what answers. When resources.ts fails to load,
 * Harper logs the error and still serves the tables of schema.graphql, unchecked: the run would
 * then measure a plain table under the component's name. A body our rules refuse tells the two
 * apart (a plain table stores it).
 */
async function assertComponentLoaded(httpUrl: string, admin: AdminCredentials): Promise<void> {
  const response = await fetch(`${httpUrl}/sensors/bench-load-check`, {
    method: 'PUT',
    headers: { authorization: basicAuth(admin), 'content-type': 'application/json' },
    body: '{}',
  });
  const body = await response.text();
  if (response.status !== 400 || !body.includes('missing_field')) {
    throw new Error(
      `the component's resources did not load (PUT of an empty sensor answered ${response.status} ${body.slice(0, 200)}); see Harper's log`,
    );
  }
}

/** (d): a component with one exported plain table, no resource code (generated at run time). */
function plainTableComponent(workDir: string): string {
  return generatedComponent(join(workDir, 'plain-table'), 'type sensors @table @export {\n  id: ID @primaryKey\n}\n');
}

/**
 * (e): this component's data model written the plainest way Harper documents, as a yardstick for
 * what storing a queryable reading per message costs by itself: the sensors table and a readings
 * table like ours (same indexes, same expiry, the same ids: time first), and a resource whose `put`
 * appends the reading in the write's own transaction. No validation, ordering, batching, rules or statistics.
 */
function tableWithHistoryComponent(workDir: string): string {
  const schema = [
    'type sensors @table {\n  id: ID @primaryKey\n}',
    'type readings @table(expiration: 604800) {\n  id: ID @primaryKey\n  sensorId: String @indexed\n  time: Float @indexed\n}',
    '',
  ].join('\n');
  const resources = `// Generated by bench/systems.ts: the sensors table, each stored write also appending a reading.
import { threadId } from 'node:worker_threads';
let sequence = 0;
export class sensors extends tables.sensors {
  put(data) {
    const id = String(this.getId());
    const time = Date.now();
    tables.readings.put(
      { id: \`\${time.toFixed(3).padStart(17, '0')}@\${id}@\${process.pid}-\${threadId}-\${sequence++}\`, sensorId: id, time, deviceTime: data.time, location: data.location, temperature: data.temperature },
      this,
    );
    return super.put(data);
  }
}
`;
  return generatedComponent(join(workDir, 'table-with-history'), schema, resources);
}

/** A component folder generated at run time: its schema, optional resource code, and a page for the launcher's check. */
export function generatedComponent(dir: string, schema: string, resources?: string): string {
  mkdirSync(join(dir, 'web'), { recursive: true });
  writeFileSync(
    join(dir, 'config.yaml'),
    "rest: true\ngraphqlSchema:\n  files: 'schema.graphql'\nstatic:\n  files: 'web/**'\n" +
      (resources ? "jsResource:\n  files: 'resources.js'\n" : ''),
  );
  writeFileSync(join(dir, 'schema.graphql'), schema);
  if (resources) writeFileSync(join(dir, 'resources.js'), resources);
  // The launcher waits for "/" to answer 200.
  writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><title>generated component</title>\n');
  return dir;
}
