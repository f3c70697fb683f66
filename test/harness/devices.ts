/** The device simulators (devices/*.ts), run as the CLIs they are against the test Harper. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { COMPONENT_DIR, type AdminCredentials } from '../../launcher/harper-process.js';
import type { HarperEndpoints } from './harper.js';

export interface Simulator {
  child: ReturnType<typeof spawn>;
  /** Its exit code, once it has exited. */
  exited: Promise<number | null>;
  /** Resolves once its output (stdout) matches. */
  printed(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** What it printed so far, stdout and stderr. */
  output(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `dist/devices/<script>` as `device`, speaking MQTT to the test Harper. */
export function simulator(
  harper: HarperEndpoints,
  script: string,
  args: string[],
  device: AdminCredentials,
): Simulator {
  return deviceProcess(script, process.execPath, [join(COMPONENT_DIR, 'dist', 'devices', script), ...args], {
    ...process.env,
    DEVICE_URL: harper.mqttUrl,
    DEVICE_USERNAME: device.username,
    DEVICE_PASSWORD: device.password,
  });
}

/**
 * Runs a device program (ours, or an example in another language) and watches what it prints;
 * `name` names it in the error of a `printed` that times out.
 */
export function deviceProcess(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  printedTimeoutMs = 10_000,
): Simulator {
  const child = spawn(command, args, { env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const printed = (pattern: RegExp, timeoutMs = printedTimeoutMs) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} printed no ${pattern}:\n${output}`)), timeoutMs);
      const check = () => pattern.test(output) && (clearTimeout(timer), resolve());
      child.stdout.on('data', check);
      check();
    });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  return { child, exited, printed, output: () => output, stop };
}
