/**
 * A simulated LED sign, the device side of the sign's twin: subscribes to its sign (signs/<id>),
 * shows what it is asked to show (the desired state, once an operator has set one; until then
 * what it shows at start), draws it in the terminal, and reports what it shows by a retained
 * publish of its whole state to signs/<id> whenever the twin's `reported` differs from it. A sign
 * that was offline gets its sign's current state on subscribing and so catches up. The device
 * user is named like the sign (npm run users -- add 2FE598 --role device).
 */
import { parseArgs } from 'node:util';
import { MQTT5_REASON } from '../shared/codes.js';
import { SIGN_FIELDS, type SignRecord, type SignState } from '../shared/records.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, UsageError, connect, connectionFrom, run } from './device-options.js';

const HELP = `Simulated LED sign: shows the desired state of signs/<id> and reports what it shows there.

Usage: node dist/devices/sign-device.js [options]

Sign:
  --sign <id>            the sign's id (default: the device user name)
  --message <text>       what the sign shows when it starts, until an operator sets it (a greeting)
  --delay <ms>           take this long to show a change, as a slow display would (default 0)
  --exit-after <n>       exit after showing n states (for scripts and tests)
  --quiet                print only errors
${CONNECTION_HELP}
  -h, --help             this help
`;

const FIELDS = SIGN_FIELDS;

/** The twin as the server sends it: desired at the top level (once set), and the last report. */
type SignTwin = SignRecord;

function desiredOf(twin: SignTwin): SignState | undefined {
  if (FIELDS.some((field) => twin[field] === undefined)) return undefined;
  return { message: twin.message!, brightness: twin.brightness!, power: twin.power!, color: twin.color! };
}

const WIDTH = 64;

/** One line per state, readable in a log; with a terminal, a dot-matrix-ish banner with colour. */
function draw(id: string, state: SignState & { updatedBy?: string }, tty: boolean): string {
  const level = state.power === 'on' ? state.brightness : 0;
  const bar = '█'.repeat(level) + '·'.repeat(15 - level);
  const text =
    state.power === 'on' ? state.message.padEnd(Math.min(WIDTH, Math.max(state.message.length, 16))) : ' '.repeat(16);
  if (!tty)
    return `sign ${id}: power ${state.power}, brightness ${state.brightness} [${bar}], colour ${state.color}, message "${state.message}"${state.updatedBy ? ` (by ${state.updatedBy})` : ''}`;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(state.color.slice(i, i + 2), 16));
  const dim = (value: number) => Math.round((value * Math.max(level, 1)) / 15);
  const lit = state.power === 'on' ? `\x1b[1;38;2;${dim(r)};${dim(g)};${dim(b)}m` : '\x1b[2m';
  const frame = '─'.repeat(text.length + 2);
  return `┌${frame}┐\n│ ${lit}${text}\x1b[0m │  sign ${id}  power ${state.power}  brightness ${bar}  ${state.color}\n└${frame}┘`;
}

run(async () => {
  const { values } = parseArgs({
    options: {
      ...CONNECTION_OPTIONS,
      sign: { type: 'string' },
      message: { type: 'string' },
      delay: { type: 'string' },
      'exit-after': { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(HELP);
  const connection = connectionFrom(values, 'sign');
  const id = values.sign ?? connection.username;
  const exitAfter = values['exit-after'] === undefined ? Infinity : Number(values['exit-after']);
  if (!(exitAfter > 0)) throw new UsageError('--exit-after must be a positive number');
  const delay = values.delay === undefined ? 0 : Number(values.delay);
  if (!(delay >= 0)) throw new UsageError('--delay must be a number of milliseconds >= 0');
  const client = await connect(connection);
  const tty = Boolean(process.stdout.isTTY) && !values.quiet;
  const log = (line: string) => values.quiet || console.log(line);
  /** What this sign shows now: its start state until it is told otherwise. */
  let shown: SignState = { message: values.message ?? '', brightness: 8, power: 'on', color: '#ff3b30' };
  let heard = false;
  let shownCount = 0;

  const show = (state: SignState, by?: string) => {
    shown = state;
    log(draw(id, { ...state, updatedBy: by }, tty));
    if (++shownCount >= exitAfter) void client.endAsync().then(() => process.exit(0));
  };
  const report = async () => {
    await client.publishAsync(`signs/${id}`, JSON.stringify(shown), { qos: 1, retain: true });
    log(
      `sign ${id}: reported message "${shown.message}", power ${shown.power}, brightness ${shown.brightness}, colour ${shown.color}`,
    );
  };

  let showing: ReturnType<typeof setTimeout> | undefined;
  /** The desired state waiting to be shown after --delay. */
  let target: SignState | undefined;
  const reportNow = () =>
    void report().catch((error: Error) => console.error(`sign ${id}: report refused (${error.message})`));
  client.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    heard = true;
    const twin = JSON.parse(payload.toString()) as SignTwin;
    const desired = desiredOf(twin);
    if (desired && FIELDS.some((field) => desired[field] !== shown[field])) {
      // Shown (and then reported) after --delay; a newer desired state replaces one still waiting.
      if (target && FIELDS.every((field) => desired[field] === target![field])) return;
      clearTimeout(showing);
      target = desired;
      showing = setTimeout(() => {
        target = undefined;
        show(desired, twin.updatedBy);
        reportNow();
      }, delay);
      return;
    }
    clearTimeout(showing);
    target = undefined;
    if (shownCount === 0) show(shown);
    // Reported until the twin says what the sign shows (its own report comes back, matching).
    if (FIELDS.some((field) => twin.reported?.[field] !== shown[field])) reportNow();
  });
  const granted = await client.subscribeAsync(`signs/${id}`, { qos: 1 });
  if ((granted[0]?.qos ?? MQTT5_REASON.FAILURE) >= MQTT5_REASON.FAILURE)
    throw new UsageError(`not allowed to subscribe to signs/${id} as ${connection.username}`);
  log(`sign ${id}: listening on signs/${id} at ${connection.url}`);
  // A sign nobody has set or heard of yet has no record to receive: report what it shows.
  setTimeout(() => {
    if (heard) return;
    show(shown);
    reportNow();
  }, 1000);

  const stop = () => void client.endAsync().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
});
