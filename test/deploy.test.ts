/**
 * `npm run deploy` against a second, bare Harper (started from node_modules with no component, as a
 * hosted or self-managed instance is): Harper's own deploy installs the component there, the
 * package holds what Harper needs and nothing of the local data or secrets, and the component works
 * on that instance: tables, validation, roles, the dashboard page.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPONENT_DIR, freePort, startHarper, type HarperInstance } from '../launcher/harper-process.js';
import type { HarperEndpoints } from './harness/harper.js';
import { connectMqtt } from './harness/mqtt.js';
import { basicAuth, rest } from './harness/rest.js';
import { createUser, operations } from './harness/users.js';

const project = `backbone-${Date.now().toString(36)}`;

interface HarperConfig {
  http?: { maxRequestBodySize?: number };
  operationsApi?: { network?: { maxRequestBodySize?: number } };
}
let dataDir: string;
let target: HarperInstance;
let endpoints: HarperEndpoints;
/** A secret planted where local secrets live (gitignored scratch): it must not travel. */
const canary = `canary-${randomBytes(12).toString('hex')}`;
const canaryFile = join(COMPONENT_DIR, '.tmp', `deploy-canary-${process.pid}.json`);

function deploy(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(COMPONENT_DIR, 'dist', 'scripts', 'deploy.js'), ...args], {
      env: {
        ...process.env,
        CLI_TARGET: endpoints.operationsUrl,
        CLI_TARGET_USERNAME: endpoints.admin.username,
        CLI_TARGET_PASSWORD: endpoints.admin.password,
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every path below `dir` (folders end with /), without following links. */
function tree(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) return [`${prefix}${name}/`, ...tree(path, `${prefix}${name}/`)];
    return [`${prefix}${name}${stat.isSymbolicLink() ? ' -> link' : ''}`];
  });
}

beforeAll(async () => {
  mkdirSync(join(COMPONENT_DIR, '.tmp'), { recursive: true });
  writeFileSync(canaryFile, JSON.stringify({ username: 'admin', password: canary }));
  dataDir = mkdtempSync(join(tmpdir(), 'backbone-bare-'));
  const ports = { http: await freePort(), mqtt: await freePort(), operations: await freePort() };
  const admin = { username: 'admin', password: randomBytes(16).toString('hex') };
  // Without the body limit `npm start` sets (HARPER_SETTINGS): the deploy must set it.
  const unlimited = JSON.stringify({
    authentication: { authorizeLocal: false },
    mqtt: { requireAuthentication: true },
  });
  target = await startHarper({ dataDir, ports, admin, componentDir: null, env: { HARPER_SET_CONFIG: unlimited } });
  endpoints = {
    httpUrl: target.httpUrl,
    wsUrl: `ws://127.0.0.1:${ports.http}`,
    mqttUrl: target.mqttUrl,
    operationsUrl: `http://127.0.0.1:${ports.operations}`,
    admin,
    logFile: join(target.rootPath, 'log', 'hdb.log'),
  };
}, 90_000);

afterAll(async () => {
  rmSync(canaryFile, { force: true });
  await target?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('npm run deploy to a bare Harper', () => {
  it('the bare instance has none of the component before the deploy, nor its body limit', async () => {
    expect((await rest(endpoints, 'GET', '/sensors/')).status).toBe(404);
    expect(
      (await operations(endpoints).call<HarperConfig>({ operation: 'get_configuration' })).http?.maxRequestBodySize,
    ).toBeUndefined();
  });

  it("deploys with Harper's own deploy and waits for the restart", async () => {
    const result = await deploy([`project=${project}`, 'restart=rolling']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`Successfully deployed: ${project}`));
    expect(result.stdout).toMatch(/restart done/);
  }, 120_000);

  it('the deployed package holds compiled code, schema, roles, config and web assets, and nothing local or secret', async () => {
    const deployed = tree(join(target.rootPath, 'components', project));
    for (const needed of [
      'config.yaml',
      'schema.graphql',
      'roles.yaml',
      'package.json',
      'dist/resources.js',
      'dist/lib/resources/sensors.js',
      'web/index.html',
      'web/dist/app.js',
      'web/vendor/mqtt.min.js',
      'web/vendor/uPlot.iife.min.js',
    ]) {
      expect(deployed, needed).toContain(needed);
    }
    const unexpected = deployed.filter(
      (path) =>
        /(^|\/)\.(harper|tmp|git)\b|credentials|\.ts$|\.map$|^(test|scripts|devices|bench|docs|lib|web\/src)\/|^dist\/(scripts|devices|test)\//.test(
          path,
        ) ||
        // Harper links its own harperdb package into the component; nothing else is installed.
        (path.startsWith('node_modules/') && path !== 'node_modules/' && path !== 'node_modules/harperdb -> link'),
    );
    expect(unexpected).toEqual([]);
    const manifest = JSON.parse(
      readFileSync(join(target.rootPath, 'components', project, 'package.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(manifest).toMatchObject({ type: 'module' });
    expect(manifest).not.toHaveProperty('dependencies');
    for (const path of deployed.filter((entry) => !entry.endsWith('/') && !entry.endsWith('-> link'))) {
      expect(readFileSync(join(target.rootPath, 'components', project, path), 'utf8').includes(canary), path).toBe(
        false,
      );
    }
  });

  it('the component works there: tables, validation, MQTT, roles and the dashboard page', async () => {
    expect(
      (await rest(endpoints, 'PUT', '/sensors/dep-1', { json: { location: 'lab', temperature: 20.5 } })).status,
    ).toBe(204);
    expect((await rest(endpoints, 'GET', '/sensors/dep-1')).body).toMatchObject({
      id: 'dep-1',
      location: 'lab',
      temperature: 20.5,
    });
    expect((await rest(endpoints, 'GET', '/readings/?sensorId=dep-1')).body).toMatchObject([
      { sensorId: 'dep-1', temperature: 20.5 },
    ]);
    const refused = await rest(endpoints, 'PUT', '/sensors/dep-1', { json: { location: 'lab', temperature: 'hot' } });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_field', field: 'temperature' });

    const mqtt = await connectMqtt(endpoints);
    await mqtt.publishAsync('sensors/dep-2', JSON.stringify({ location: 'hall', temperature: 18 }), {
      qos: 1,
      retain: true,
    });
    await mqtt.endAsync();
    expect((await rest(endpoints, 'GET', '/sensors/dep-2')).body).toMatchObject({ temperature: 18 });

    const roles = await operations(endpoints).call<{ role: string }[]>({ operation: 'list_roles' });
    expect(roles.map((role) => role.role)).toEqual(expect.arrayContaining(['device', 'viewer', 'operator']));
    const device = await createUser(endpoints, 'device', 'dep-3');
    expect(
      (await rest(endpoints, 'PUT', '/sensors/dep-3', { json: { location: 'x', temperature: 1 }, auth: device }))
        .status,
    ).toBe(204);
    expect(
      (await rest(endpoints, 'PUT', '/sensors/dep-1', { json: { location: 'x', temperature: 1 }, auth: device }))
        .status,
    ).toBe(403);
    expect((await rest(endpoints, 'GET', '/sensors/dep-1', { auth: null })).status).toBe(401);

    const page = await fetch(`${endpoints.httpUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/dist/app.js');
    for (const asset of ['/dist/app.js', '/vendor/mqtt.min.js', '/styles.css'])
      expect((await fetch(`${endpoints.httpUrl}${asset}`)).status, asset).toBe(200);
  });

  it("sets Harper's REST body limit on the target, keeping the operations API's: a chunked 1 MB body is refused with 413", async () => {
    const config = await operations(endpoints).call<HarperConfig>({ operation: 'get_configuration' });
    expect(config.http?.maxRequestBodySize).toBe(256 * 1024);
    expect(config.operationsApi?.network?.maxRequestBodySize).toBe(1024 * 1024 * 1024);
    const chunk = new TextEncoder().encode(`{"location":"lab","temperature":1,"pad":"${'x'.repeat(1024 * 1024)}"}`);
    const response = await fetch(`${endpoints.httpUrl}/sensors/dep-big`, {
      method: 'PUT',
      headers: { authorization: basicAuth(endpoints.admin), 'content-type': 'application/json' },
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(chunk);
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'payload_too_large' });
  });

  it('a refused login is reported with a non-zero exit', async () => {
    const result = await deploy([`project=${project}`], { CLI_TARGET_PASSWORD: 'wrong' });
    expect(result.code).toBe(1);
    // Refused by the first call, which sets Harper's limits (or by Harper's deploy itself).
    expect(result.stderr).toMatch(/deploy failed: .*Login failed|admin credentials for .* were refused/);
  });
});
