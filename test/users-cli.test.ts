/**
 * `npm run users`: add, grant, rotate, remove and list, run as the compiled CLI against the test
 * Harper; each change takes effect on the protocols at once; errors are clear.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { COMPONENT_DIR } from '../launcher/harper-process.js';
import { connectMqtt } from './harness/mqtt.js';
import { rest } from './harness/rest.js';

const harper = inject('harper');
const run = Date.now().toString(36);
const device = `cli-dev-${run}`;
const reading = { location: 'cli', temperature: 7 };

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function users(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(COMPONENT_DIR, 'dist', 'scripts', 'users.js'), ...args], {
      env: {
        ...process.env,
        CLI_TARGET: harper.operationsUrl,
        CLI_TARGET_USERNAME: harper.admin.username,
        CLI_TARGET_PASSWORD: harper.admin.password,
        ...env,
      },
    });
    child.stdin.end(stdin ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const put = (id: string, password: string, username = device) =>
  rest(harper, 'PUT', `/sensors/${id}`, { json: reading, auth: { username, password } });

describe('users CLI', () => {
  let password = '';

  it('adds a device with a generated password, shown once, that works on REST and MQTT', async () => {
    const result = await users(['add', device, '--role', 'device', '--sensors', `${device}-a`]);
    expect(result.code, result.stderr).toBe(0);
    password = /Password \(shown once, store it now\):\n\s+(\S+)/.exec(result.stdout)?.[1] ?? '';
    expect(password.length).toBeGreaterThanOrEqual(24);
    expect((await put(device, password)).status).toBe(204);
    expect((await put(`${device}-a`, password)).status).toBe(204);
    expect((await put(`${device}-b`, password)).status).toBe(403);
    const mqtt = await connectMqtt(harper, { credentials: { username: device, password } });
    await mqtt.endAsync();
  });

  it('grant replaces the extra ids a device may act for', async () => {
    const result = await users(['grant', device, '--sensors', `${device}-b`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${device}-b`);
    expect((await put(`${device}-b`, password)).status).toBe(204);
    expect((await put(`${device}-a`, password)).status).toBe(403);
  });

  it('rotate: the new password works and the old one is refused', async () => {
    const result = await users(['rotate', device, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const rotated = JSON.parse(result.stdout) as { password: string };
    expect(rotated.password).not.toBe(password);
    expect((await put(device, rotated.password)).status).toBe(204);
    expect((await put(device, password)).status).toBe(401);
    await expect(connectMqtt(harper, { credentials: { username: device, password } })).rejects.toThrow();
    password = rotated.password;
  });

  it('--password-stdin takes the password from standard input, so neither ps nor shell history sees it; --password still works, with a warning', async () => {
    const name = `cli-stdin-${run}`;
    const secret = `stdin-${run}-Secret!`;
    const added = await users(['add', name, '--role', 'viewer', '--password-stdin', '--json'], {}, `${secret}\n`);
    expect(added.code, added.stderr).toBe(0);
    expect((JSON.parse(added.stdout) as { password: string }).password).toBe(secret);
    expect((await rest(harper, 'GET', '/sensors/', { auth: { username: name, password: secret } })).status).toBe(200);

    const rotated = await users(['rotate', name, '--password-stdin'], {}, `${secret}-2\n`);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect((await rest(harper, 'GET', '/sensors/', { auth: { username: name, password: `${secret}-2` } })).status).toBe(
      200,
    );
    expect((await rest(harper, 'GET', '/sensors/', { auth: { username: name, password: secret } })).status).toBe(401);

    const flagged = await users(['rotate', name, '--password', `${secret}-3`]);
    expect(flagged.code, flagged.stderr).toBe(0);
    expect(flagged.stderr).toMatch(/--password is visible .* prefer --password-stdin/);
    expect((await rest(harper, 'GET', '/sensors/', { auth: { username: name, password: `${secret}-3` } })).status).toBe(
      200,
    );

    const empty = await users(['rotate', name, '--password-stdin'], {}, '');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/standard input held no password/);
  });

  it('list shows users, roles and device grants', async () => {
    const result = await users(['list', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const listed = JSON.parse(result.stdout) as { username: string; role: string; grants?: { sensors?: string[] } }[];
    expect(listed.find((user) => user.username === device)).toMatchObject({
      role: 'device',
      grants: { sensors: [`${device}-b`] },
    });
    expect(listed.find((user) => user.username === harper.admin.username)?.role).toBe('super_user');
  });

  it('adds viewers and operators; they read but cannot write', async () => {
    for (const role of ['viewer', 'operator']) {
      const name = `cli-${role}-${run}`;
      const result = await users(['add', name, '--role', role, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const { password: secret } = JSON.parse(result.stdout) as { password: string };
      expect((await rest(harper, 'GET', '/sensors/', { auth: { username: name, password: secret } })).status).toBe(200);
      expect((await put(name, secret, name)).status).toBe(403);
    }
  });

  it('remove: the user can no longer log in', async () => {
    const result = await users(['remove', device]);
    expect(result.code, result.stderr).toBe(0);
    expect((await put(device, password)).status).toBe(401);
  });

  it.each([
    [['add', 'x'], 2, /--role must be one of device, viewer, operator/],
    [['add', 'bad name', '--role', 'device'], 2, /not a valid user name/],
    [['add', 'has.dot', '--role', 'device'], 2, /a device name is its sensor id/],
    [['add', 'v', '--role', 'viewer', '--sensors', 'a'], 2, /--sensors and --signs are for devices/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [['add', `cli-dup-${run}`, '--role', 'viewer', '--bogus'], 2, /Unknown option '--bogus'/],
  ])('usage error %j -> exit %i', async (args, code, message) => {
    const result = await users(args);
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
  });

  it('reports a duplicate user, refused admin credentials and an unreachable server clearly', async () => {
    const name = `cli-twice-${run}`;
    expect((await users(['add', name, '--role', 'viewer'])).code).toBe(0);
    const twice = await users(['add', name, '--role', 'viewer']);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/already exists/);
    const refused = await users(['list'], { CLI_TARGET_PASSWORD: 'wrong' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/admin credentials .* were refused/);
    const unreachable = await users(['list'], { CLI_TARGET: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach Harper's operations API at http:\/\/127\.0\.0\.1:9/);
  });
});
