/**
 * The README's examples, run as a user would run them: the exact command lines from README.md,
 * with the standard mosquitto_pub/mosquitto_sub and curl, against the test Harper (only the ports
 * are rewritten). If the README and the product drift apart, this fails.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { COMPONENT_DIR } from '../launcher/harper-process.js';

const harper = inject('harper');
const httpPort = new URL(harper.httpUrl).port;
const mqttPort = new URL(harper.mqttUrl).port;

/** Every shell command in the README's ```sh blocks, joined across multi-line `node -e` blocks. */
function readmeCommands(): string[] {
  const readme = readFileSync(join(COMPONENT_DIR, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]);
  const commands: string[] = [];
  for (const block of blocks) {
    if (block.includes('node -e "')) commands.push(block.trim());
    else commands.push(...block.split('\n').filter((line) => /^(curl|mosquitto_pub|mosquitto_sub) /.test(line)));
  }
  return commands;
}

const commands = readmeCommands();

/** The README command that starts with `prefix` and contains `fragment`, pointed at the test ports. */
function command(prefix: string, fragment: string): string {
  const found = commands.find((line) => line.startsWith(prefix) && line.includes(fragment));
  if (!found) throw new Error(`README has no "${prefix} ... ${fragment}" example`);
  return found.replaceAll('localhost:9926', `localhost:${httpPort}`).replaceAll('-p 1883', `-p ${mqttPort}`);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function shell(line: string): ReturnType<typeof spawn> {
  return spawn('bash', ['-c', line], {
    env: { ...process.env, PASS: harper.admin.password, NODE_PATH: join(COMPONENT_DIR, 'node_modules') },
    cwd: COMPONENT_DIR,
    detached: true,
  });
}

/** Runs a command that ends by itself. */
function runToEnd(line: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = shell(line);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A command that keeps streaming (mosquitto_sub, curl -N), read until its output matches. */
function streaming(line: string) {
  const child = shell(line);
  let stdout = '';
  let stderr = '';
  let exited: number | null | undefined;
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk;
    listeners.forEach((listener) => listener());
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk;
    listeners.forEach((listener) => listener());
  });
  child.once('exit', (code) => {
    exited = code;
    listeners.forEach((listener) => listener());
  });
  return {
    /** Resolves with stdout once `pattern` matches it. */
    waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => done(new Error(`"${line}" printed no ${pattern} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const done = (error?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(new Error(`${error.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          else resolve(stdout);
        };
        const check = () => {
          if (pattern.test(stdout)) done();
          else if (exited !== undefined) done(new Error(`"${line}" exited (${exited})`));
        };
        listeners.add(check);
        check();
      });
    },
    stop(): void {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    },
  };
}

/**
 * A README mosquitto_sub line, with -d added only to learn when the subscription is in place
 * (its SUBACK), and line-buffered output (stdout is a pipe here, not a terminal).
 */
function subscribeCommand(filter: string): string {
  return `stdbuf -oL ${command('mosquitto_sub', filter)} -d`;
}

async function getJson(path: string): Promise<Record<string, unknown>> {
  const result = await runToEnd(command('curl -u "admin:$PASS" http', path));
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

describe('README examples with standard clients', () => {
  it('mosquitto_sub on sensors/# sees what mosquitto_pub publishes; curl reads it back', async () => {
    const sub = streaming(subscribeCommand("'sensors/#'"));
    try {
      await sub.waitFor(/received SUBACK/);
      const published = await runToEnd(command('mosquitto_pub', '-t sensors/101'));
      expect(published.code, published.stderr).toBe(0);
      const seen = await sub.waitFor(/^sensors\/101 \{.*"temperature":21\.5/m);
      expect(seen).toMatch(/^sensors\/101 \{.*"location":"lab"/m);
    } finally {
      sub.stop();
    }
    expect(await getJson('/sensors/101')).toMatchObject({
      id: '101',
      location: 'lab',
      temperature: 21.5,
      humidity: 40,
    });
  });

  it('curl PUT, PATCH and POST write; curl -N streams over SSE', async () => {
    expect((await runToEnd(command('curl -u "admin:$PASS" -X PUT', '/sensors/101'))).code).toBe(0);
    expect(await getJson('/sensors/101')).toMatchObject({ location: 'lab', temperature: 22 });
    expect((await runToEnd(command('curl -u "admin:$PASS" -X PATCH', '/sensors/101'))).code).toBe(0);
    expect(await getJson('/sensors/101')).toMatchObject({ temperature: 22, humidity: 45 });
    const posted = await runToEnd(command('curl -u "admin:$PASS" -X POST', '/sensors/'));
    expect(JSON.parse(posted.stdout)).toMatchObject({ id: '102', location: 'hall', temperature: 19 });
    const sse = streaming(command('curl -N', '/sensors/101'));
    try {
      const stream = await sse.waitFor(/^data: .*"id":"101"/m);
      expect(stream).toMatch(/"value":\{[^}]*"humidity":45/);
    } finally {
      sse.stop();
    }
  });

  it('the WebSocket example writes a reading and gets an ack', async () => {
    const client = streaming(command('PASS="$PASS" node -e', 'ws://'));
    try {
      await client.waitFor(/"type":"ack","id":"101"/);
    } finally {
      client.stop();
    }
    expect(await getJson('/sensors/101')).toMatchObject({ temperature: 23 });
  });

  it('the catch-all topic space works with mosquitto and curl', async () => {
    const sub = streaming(subscribeCommand("'factory/+/status'"));
    try {
      await sub.waitFor(/received SUBACK/);
      expect((await runToEnd(command('mosquitto_pub', 'factory/line-1/status'))).code).toBe(0);
      // Delivered as published (no leading slash), as the README shows.
      const seen = await sub.waitFor(/^factory\/line-1\/status \{"state":"running"/m);
      expect(seen).toContain('"id":"factory/line-1/status"');
    } finally {
      sub.stop();
    }
    expect(await getJson('/factory/line-1/status')).toEqual({ id: 'factory/line-1/status', state: 'running' });
  });

  it('shows a refusal as the README says', async () => {
    const refused = await runToEnd(
      `curl -s -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"location":"lab","temperature":"hot"}' http://localhost:${httpPort}/sensors/101`,
    );
    expect(JSON.parse(refused.stdout)).toEqual({
      error: 'invalid_field',
      field: 'temperature',
      rule: 'a finite number >= -273.15',
      message: 'temperature must be a finite number >= -273.15',
    });
  });
});
