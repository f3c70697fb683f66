/**
 * `npm start` as a new user runs it: Harper from node_modules, data in a local folder, a generated
 * admin password saved owner-only and printed once, a clean stop on Ctrl-C, and a second start that
 * reuses data and credentials. Runs the compiled start script (npm start = build + this script)
 * with its own data folder and free ports.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMPONENT_DIR, freePort } from '../launcher/harper-process.js';
import { DEMO_SIGNS } from '../launcher/demo.js';
import { connectMqtt, mqttSubscriber } from './harness/mqtt.js';
import { rest } from './harness/rest.js';
import { sseSubscriber } from './harness/sse.js';
import { wsSubscriber } from './harness/ws.js';
import type { HarperEndpoints } from './harness/harper.js';

const dataDir = mkdtempSync(join(tmpdir(), 'backbone-start-'));
const env: Record<string, string> = {};

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

interface Started {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
}

/** Runs the start script and resolves once it has printed its summary. */
async function npmStart(args: string[] = [], extraEnv: Record<string, string> = {}): Promise<Started> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, ...extraEnv, DATA_DIR: dataDir };
  delete childEnv.HDB_ADMIN_USERNAME;
  delete childEnv.HDB_ADMIN_PASSWORD;
  const child = spawn(process.execPath, [join(COMPONENT_DIR, 'dist', 'scripts', 'start.js'), ...args], {
    env: childEnv,
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no summary within 40 s:\n${output}`)), 40_000);
    const check = () => output.includes('Ctrl-C stops Harper') && (clearTimeout(timer), resolve());
    child.stdout.on('data', check);
    child.once('exit', (code) => reject(new Error(`start exited early (${code}):\n${output}`)));
  });
  return { child, output: () => output };
}

async function ctrlC(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => started.child.once('exit', (code) => resolve(code)));
  started.child.kill('SIGINT');
  return exited;
}

/** The direct children of a process (Linux). */
function childPids(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
  );
}

function endpoints(password: string): HarperEndpoints {
  return {
    httpUrl: `http://127.0.0.1:${env.HTTP_PORT}`,
    wsUrl: `ws://127.0.0.1:${env.HTTP_PORT}`,
    mqttUrl: `mqtt://127.0.0.1:${env.MQTT_NETWORK_PORT}`,
    operationsUrl: `http://127.0.0.1:${env.OPERATIONSAPI_NETWORK_PORT}`,
    admin: { username: 'admin', password },
    logFile: join(dataDir, 'root', 'log', 'hdb.log'),
  };
}

describe('npm start', () => {
  let password = '';

  it('first start installs, generates and prints the admin password once, and serves everything', async () => {
    env.HTTP_PORT = String(await freePort());
    env.MQTT_NETWORK_PORT = String(await freePort());
    env.OPERATIONSAPI_NETWORK_PORT = String(await freePort());
    const started = await npmStart();
    try {
      const saved = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as {
        username: string;
        password: string;
      };
      password = saved.password;
      expect(saved.username).toBe('admin');
      expect(password.length).toBeGreaterThanOrEqual(24);
      expect(statSync(join(dataDir, 'credentials.json')).mode & 0o777).toBe(0o600);
      expect(started.output()).toContain(password);
      expect(started.output()).toContain(`http://localhost:${env.HTTP_PORT}/`);
      expect(started.output()).toContain(`mqtt://localhost:${env.MQTT_NETWORK_PORT}`);

      const harper = endpoints(password);
      const page = await rest(harper, 'GET', '/', { auth: null });
      expect(page.status).toBe(200);
      expect(page.text).toContain('<html');
      expect(
        (await rest(harper, 'PUT', '/sensors/start-1', { json: { location: 'first run', temperature: 5 } })).status,
      ).toBe(204);
      // The demo devices are alive: the fleet's sensors publish, both signs greet, and the demo
      // rule's alert fires and resolves within a minute of the start.
      expect(started.output()).toContain('Demo devices: sensors demo-1');
      let demoProcesses = 0;
      const demo = await mqttSubscriber(harper, 'sensors/demo-1');
      await demo.inbox.waitFor((item) => item.topic === 'sensors/demo-1', 10_000, 'a demo reading');
      await demo.close();
      expect(statSync(join(dataDir, 'demo-devices.json')).mode & 0o777).toBe(0o600);
      // The demo devices got only their own connection settings, nothing of the launcher's environment.
      for (const pid of childPids(started.child.pid!)) {
        const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (!/sensor-fleet|sign-device/.test(command)) continue;
        const names = readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((entry) => entry.split('=')[0]);
        expect(names.sort(), command).toEqual(['DEVICE_PASSWORD', 'DEVICE_URL', 'DEVICE_USERNAME']);
        demoProcesses++;
      }
      expect(demoProcesses).toBe(1 + Object.keys(DEMO_SIGNS).length);
      for (const [sign, greeting] of Object.entries(DEMO_SIGNS)) {
        await expect
          .poll(
            async () =>
              (await rest<{ reported?: { message?: string; power?: string } }>(harper, 'GET', `/signs/${sign}`)).body
                .reported,
            { timeout: 15_000 },
          )
          .toMatchObject({ message: greeting, power: 'on' });
      }
      const alertStates = async () =>
        (
          await rest<{ state: string; sensorId: string }[]>(harper, 'GET', '/alerts/?ruleId=demo-too-hot&sort(time)')
        ).body.map((alert) => `${alert.sensorId} ${alert.state}`);
      await expect
        .poll(alertStates, { timeout: 60_000, interval: 1000 })
        .toEqual(expect.arrayContaining(['demo-4 resolved']));
      expect((await alertStates()).slice(0, 2)).toEqual(['demo-4 firing', 'demo-4 resolved']);
      const mqtt = await connectMqtt(harper);
      await mqtt.endAsync();

      // Rotating the admin password with the users CLI keeps the saved credentials current.
      const rotated = spawnSync(
        process.execPath,
        [join(COMPONENT_DIR, 'dist', 'scripts', 'users.js'), 'rotate', 'admin'],
        {
          env: {
            ...process.env,
            ...env,
            DATA_DIR: dataDir,
            CLI_TARGET: '',
            CLI_TARGET_USERNAME: '',
            HDB_ADMIN_USERNAME: '',
          },
          encoding: 'utf8',
        },
      );
      expect(rotated.status, rotated.stderr).toBe(0);
      const newPassword = (JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as { password: string })
        .password;
      expect(newPassword).not.toBe(password);
      expect(rotated.stdout).toContain(newPassword);
      expect((await rest(harper, 'GET', '/sensors/start-1')).status).toBe(401);
      password = newPassword;
      expect((await rest(endpoints(password), 'GET', '/sensors/start-1')).status).toBe(200);
    } finally {
      expect(await ctrlC(started)).toBe(0);
    }
    expect(started.output()).toMatch(/Harper stopped/);
    // Waits up to a minute for the demo rule's alerts.
  }, 150_000);

  it('a second start reuses the data and the credentials and does not print the password; Ctrl-C tells subscribers why they are cut off', async () => {
    const started = await npmStart(['--no-demo']);
    let stopped = false;
    try {
      expect(started.output()).not.toContain(password);
      expect(started.output()).toContain('password in');
      expect(started.output()).not.toContain('Demo devices');
      const stored = await rest(endpoints(password), 'GET', '/sensors/start-1');
      expect(stored.status).toBe(200);
      expect(stored.body).toMatchObject({ location: 'first run', temperature: 5 });

      // Subscribers on every protocol, then Ctrl-C: each learns that the server is stopping.
      const ws = await wsSubscriber(endpoints(password), '/sensors/start-1');
      const sse = sseSubscriber(endpoints(password), '/sensors/start-1');
      await sse.opened;
      await ws.inbox.waitFor((item) => item.type === 'put');
      const mqtt = await connectMqtt(endpoints(password), { protocolVersion: 5 });
      const mqttClosed = new Promise<void>((resolve) => mqtt.once('close', () => resolve()));
      stopped = true;
      expect(await ctrlC(started)).toBe(0);
      expect(ws.inbox.items.find((item) => item.type === 'error')?.value).toMatchObject({
        type: 'error',
        value: { error: 'server_shutting_down' },
      });
      expect(sse.inbox.items.find((item) => item.type === 'error')?.value).toMatchObject({
        error: 'server_shutting_down',
      });
      expect((await ws.closed).code).not.toBe(1006); // a close frame, not a dropped connection
      await mqttClosed;
      sse.close();
      mqtt.end(true);
    } finally {
      if (!stopped) expect(await ctrlC(started)).toBe(0);
    }
  });

  it('never passes AUTHENTICATION_AUTHORIZELOCAL, DEV_MODE or other weakening variables to Harper, and says so once', async () => {
    // Harper 4.7.29 reads any non-empty AUTHENTICATION_AUTHORIZELOCAL ("false" included) or
    // DEV_MODE as "every local client is a super user"; a careful operator might set the first.
    const started = await npmStart(['--no-demo'], {
      AUTHENTICATION_AUTHORIZELOCAL: 'false',
      DEV_MODE: 'true',
      THREADS_DEBUG: 'true',
    });
    try {
      const notices = started
        .output()
        .split('\n')
        .filter((line) => line.startsWith('Not passed to Harper'));
      expect(notices).toEqual([
        'Not passed to Harper (it would weaken authentication; authorizeLocal stays off): AUTHENTICATION_AUTHORIZELOCAL, DEV_MODE, THREADS_DEBUG',
      ]);
      const harper = endpoints(password);
      expect((await rest(harper, 'GET', '/sensors/', { auth: null })).status).toBe(401);
      expect((await rest(harper, 'GET', '/sensors/start-1', { auth: null })).status).toBe(401);
      const anonymous = await fetch(harper.operationsUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ operation: 'list_users' }),
      });
      expect(anonymous.status).toBe(401);
      expect(await anonymous.text()).not.toContain('"username":"admin"');
      await expect(connectMqtt(harper, { credentials: null })).rejects.toThrow(
        /Not authorized|Bad user ?name or password/i,
      );
      // The admin still works, and the operations API no longer answers foreign origins with CORS.
      expect((await rest(harper, 'GET', '/sensors/start-1')).status).toBe(200);
      const preflight = await fetch(harper.operationsUrl, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      await preflight.arrayBuffer();
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      expect(await ctrlC(started)).toBe(0);
    }
  });

  it('--dev (npm run dev) restarts Harper when the component changes, and Ctrl-C stops both', async () => {
    const started = await npmStart(['--dev']);
    try {
      expect(started.output()).toContain('restarts when the code changes');
      const now = new Date();
      utimesSync(join(COMPONENT_DIR, 'config.yaml'), now, now);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no restart within 30 s:\n${started.output()}`)), 30_000);
        const check = () => started.output().includes('Harper restarted') && (clearTimeout(timer), resolve());
        started.child.stdout.on('data', check);
        started.child.once('exit', () => reject(new Error(`exited during restart:\n${started.output()}`)));
        check();
      });
      const stored = await rest(endpoints(password), 'GET', '/sensors/start-1');
      expect(stored.status).toBe(200);
    } finally {
      expect(await ctrlC(started)).toBe(0);
    }
  }, 60_000);
});
