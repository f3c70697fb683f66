/**
 * A fleet of simulated sensors publishing telemetry over MQTT, with realistic drift: temperature
 * wanders around a per-sensor base with a slow daily swing, humidity moves against it, the battery
 * drains slowly. One connection for the fleet, as a gateway would (the device user must own the
 * sensor ids: npm run users -- add <gateway> --role device --sensors demo-1,demo-2,...).
 */
import { parseArgs } from 'node:util';
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  UsageError,
  connect,
  connectionFrom,
  positiveNumber,
  run,
} from './device-options.js';

const HELP = `Simulated sensor fleet: publishes readings to sensors/<id> over MQTT.

Usage: node dist/devices/sensor-fleet.js [options]

Fleet:
  --sensors <ids>        comma-separated sensor ids (default: demo-1,demo-2,demo-3,demo-4)
  --interval <seconds>   seconds between two readings of one sensor (default 2)
  --qos <0|1>            MQTT QoS (default 1)
  --no-retain            publish without retain: fanned out, not stored
  --count <n>            stop after n readings per sensor (default: run until stopped)
  --heat <id>            this sensor runs 12 °C hot for 10 s of every 30 s, from 10 s after the
                         start (to see alert rules fire and resolve)
  --quiet                print only errors
${CONNECTION_HELP}
  -h, --help             this help
`;

interface Drift {
  id: string;
  location: string;
  base: number;
  temperature: number;
  humidity: number;
  battery: number;
}

const LOCATIONS = ['lab', 'hall', 'roof', 'server room', 'cold store', 'office', 'garage', 'greenhouse'];

function step(sensor: Drift, now: number): void {
  const daily = Math.sin((now / 86_400_000) * 2 * Math.PI) * 2;
  const noise = (Math.random() - 0.5) * 0.4;
  // A random walk pulled back towards base + daily swing, so values drift but stay plausible.
  sensor.temperature += (sensor.base + daily - sensor.temperature) * 0.1 + noise;
  sensor.humidity = Math.min(100, Math.max(0, sensor.humidity - noise * 2 + (55 - sensor.humidity) * 0.05));
  sensor.battery = Math.max(0, sensor.battery - Math.random() * 0.01);
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

run(async () => {
  const { values } = parseArgs({
    options: {
      ...CONNECTION_OPTIONS,
      sensors: { type: 'string' },
      interval: { type: 'string' },
      qos: { type: 'string' },
      'no-retain': { type: 'boolean', default: false },
      count: { type: 'string' },
      heat: { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(HELP);
  const ids = (values.sensors ?? 'demo-1,demo-2,demo-3,demo-4')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new UsageError('--sensors needs at least one id');
  const interval = positiveNumber('interval', values.interval, 2) * 1000;
  const qos = values.qos === undefined ? 1 : Number(values.qos);
  if (qos !== 0 && qos !== 1) throw new UsageError('--qos must be 0 or 1');
  const limit = values.count === undefined ? Infinity : positiveNumber('count', values.count, 1);
  const connection = connectionFrom(values, 'fleet');
  const client = await connect(connection);
  const log = (line: string) => values.quiet || console.log(line);
  log(
    `fleet: ${ids.length} sensors -> ${connection.url} as ${connection.username}, every ${interval / 1000} s, QoS ${qos}${values['no-retain'] ? ', not retained' : ''}`,
  );

  const fleet: Drift[] = ids.map((id, i) => {
    const base = 18 + ((i * 7) % 10);
    return {
      id,
      location: LOCATIONS[i % LOCATIONS.length],
      base,
      temperature: base,
      humidity: 45 + (i % 20),
      battery: 100 - (i % 30),
    };
  });
  const heated = values.heat;
  if (heated !== undefined && !ids.includes(heated)) throw new UsageError(`--heat ${heated} is not one of --sensors`);
  const startedAt = Date.now();
  /** Whether the heated sensor is in its hot phase now: 10 s of every 30 s, from 10 s in. */
  const hot = () => (Date.now() - startedAt) % 30_000 >= 10_000 && (Date.now() - startedAt) % 30_000 < 20_000;
  let sent = 0;
  const stop = async (code: number) => {
    await client.endAsync();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  for (let round_ = 1; round_ <= limit; round_++) {
    const started = Date.now();
    for (const sensor of fleet) {
      step(sensor, started);
      // A heater switching on: the hot phase jumps up at once and back down after it.
      const temperature = sensor.id === heated && hot() ? sensor.temperature + 12 : sensor.temperature;
      const reading = {
        location: sensor.location,
        temperature: round(temperature, 2),
        humidity: round(sensor.humidity, 1),
        battery: round(sensor.battery, 1),
        time: Date.now(),
      };
      try {
        await client.publishAsync(`sensors/${sensor.id}`, JSON.stringify(reading), {
          qos,
          retain: !values['no-retain'],
        });
        sent++;
        log(
          `${new Date().toISOString()} sensors/${sensor.id} ${reading.temperature} °C ${reading.humidity} % battery ${reading.battery} %`,
        );
      } catch (error) {
        console.error(`sensors/${sensor.id}: refused (${(error as Error).message})`);
      }
    }
    if (round_ < limit)
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, interval - (Date.now() - started))));
  }
  log(`fleet: sent ${sent} readings`);
  await stop(0);
});
