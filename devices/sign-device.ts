/**
 * A simulated LED sign: subscribes to its sign (signs/<id>), draws it in the terminal (message,
 * brightness, power, colour) and reports its actual state back on the LED-sign demo's per-field
 * topics (led-sign/<id>/<field>) when it starts and when its own state differs from what it was
 * asked to show. The device user is named like the sign (npm run users -- add 2FE598 --role device).
 */
import { parseArgs } from 'node:util';
import type { MqttClient } from 'mqtt';
import { MQTT5_REASON } from '../shared/codes.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, UsageError, connect, connectionFrom, run } from './device-options.js';

const HELP = `Simulated LED sign: shows signs/<id> and reports its state on led-sign/<id>/<field>.

Usage: node dist/devices/sign-device.js [options]

Sign:
  --sign <id>            the sign's id (default: the device user name)
  --message <text>       report this message as shown locally at start (as if typed on the sign)
  --exit-after <n>       exit after showing n states (for scripts and tests)
  --quiet                print only errors
${CONNECTION_HELP}
  -h, --help             this help
`;

interface SignState {
  message: string;
  brightness: number;
  power: 'on' | 'off';
  color: string;
  updatedBy?: string;
}

const WIDTH = 64;

/** One line per state, readable in a log; with a terminal, a dot-matrix-ish banner with colour. */
function draw(id: string, state: SignState, tty: boolean): string {
  const level = state.power === 'on' ? state.brightness : 0;
  const bar = '█'.repeat(level) + '·'.repeat(15 - level);
  const text = state.power === 'on' ? state.message.padEnd(Math.min(WIDTH, Math.max(state.message.length, 16))) : ' '.repeat(16);
  if (!tty) return `sign ${id}: power ${state.power}, brightness ${state.brightness} [${bar}], colour ${state.color}, message "${state.message}"${state.updatedBy ? ` (by ${state.updatedBy})` : ''}`;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(state.color.slice(i, i + 2), 16));
  const dim = (value: number) => Math.round((value * Math.max(level, 1)) / 15);
  const lit = state.power === 'on' ? `\x1b[1;38;2;${dim(r)};${dim(g)};${dim(b)}m` : '\x1b[2m';
  const frame = '─'.repeat(text.length + 2);
  return `┌${frame}┐\n│ ${lit}${text}\x1b[0m │  sign ${id}  power ${state.power}  brightness ${bar}  ${state.color}\n└${frame}┘`;
}

async function report(client: MqttClient, id: string, fields: Partial<SignState>): Promise<void> {
  for (const [field, value] of Object.entries(fields)) {
    await client.publishAsync(`led-sign/${id}/${field}`, String(value), { qos: 1, retain: true });
  }
}

run(async () => {
  const { values } = parseArgs({
    options: { ...CONNECTION_OPTIONS, sign: { type: 'string' }, message: { type: 'string' }, 'exit-after': { type: 'string' }, quiet: { type: 'boolean', default: false } },
  });
  if (values.help) return void console.log(HELP);
  const connection = connectionFrom(values, 'sign');
  const id = values.sign ?? connection.username;
  const exitAfter = values['exit-after'] === undefined ? Infinity : Number(values['exit-after']);
  if (!(exitAfter > 0)) throw new UsageError('--exit-after must be a positive number');
  const client = await connect(connection);
  const tty = Boolean(process.stdout.isTTY) && !values.quiet;
  const log = (line: string) => values.quiet || console.log(line);
  let shown = 0;
  let first = true;

  client.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    const state = JSON.parse(payload.toString()) as SignState;
    log(draw(id, state, tty));
    shown++;
    if (first) {
      first = false;
      // Report what the sign shows locally, if it was given something of its own.
      if (values.message !== undefined && values.message !== state.message) void report(client, id, { message: values.message });
    }
    if (shown >= exitAfter) void client.endAsync().then(() => process.exit(0));
  });
  const granted = await client.subscribeAsync(`signs/${id}`, { qos: 1 });
  if ((granted[0]?.qos ?? MQTT5_REASON.FAILURE) >= MQTT5_REASON.FAILURE) throw new UsageError(`not allowed to subscribe to signs/${id} as ${connection.username}`);
  log(`sign ${id}: listening on signs/${id} at ${connection.url}`);
  // A sign nobody has set yet: report that it is on and blank, so the dashboard shows it.
  setTimeout(() => {
    if (first) {
      first = false;
      void report(client, id, { power: 'on', ...(values.message !== undefined ? { message: values.message } : {}) });
    }
  }, 1000);

  const stop = () => void client.endAsync().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
});
