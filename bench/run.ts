/**
 * `npm run bench`: the backbone (this component) side by side with a plain broker, the stack it
 * replaces, a plain Harper table and the same table with a history written the plainest way, all
 * started and stopped here on loopback ports.
 * Method and how to read the output: bench/README.md. Nothing here asserts timings.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  chart,
  PERSISTED_THROUGHPUT,
  fmt,
  summarise,
  table,
  targets,
  variantLabel,
  type Result,
  type Scenario,
  type SystemKey,
} from './report.js';
import { startProfiling, summarise as profileSummary } from './profile.js';
import { COMPONENT_DIR } from '../launcher/harper-process.js';
import { say } from './progress.js';
import { startSystem, type RunningSystem } from './systems.js';
import { runScenario, scenarios } from './scenario.js';
import { floorReport, measureStorageFloor, type FloorRound } from './floor.js';

const HELP = `npm run bench [-- options]

Runs every scenario against each system, one system at a time, then prints a table, the ratios
against (c) this component, the targets (bench/README.md), and writes an SVG chart and a JSON file.
With (c), (d) and a persisted max-rate scenario it also measures the storage floor once a round (bench/floor.ts: Harper's own
cost of storing a plain record, and a state and a reading, per message) and the ceiling that puts
on each throughput target.

Systems (each started and stopped by the benchmark on 127.0.0.1, free ports):
  mosquitto   (a) Mosquitto from Debian alone, no persistence
  stack       (b) Mosquitto + the bench/stack bridge (SQLite WAL, SSE after commit)
  component   (c) this component (validation, history, rules, statistics)
  plain       (d) a plain Harper table with no resource code
  history     (e) the plain table plus a readings table, each stored write appending a reading in
              its own transaction (the plainest code for this component's data model: a yardstick)

Options:
  --quick             small counts and fewer scenarios (a smoke test, under a minute)
  --systems <list>    comma-separated subset, e.g. component,plain (default: all five)
  --scenarios <list>  comma-separated subset of the scenario keys listed below
  --threads <list>    Harper worker thread counts to run (c) and (d) with (full run: 1,2; --quick: 1;
                      npm start uses 1); ratios and targets compare the 1-thread rows
  --repeat <n>        run everything n times, systems interleaved, and report medians with the
                      min-max spread (judge the targets on --repeat 3)
  --sensors <n>       sensors each scenario's messages go to in turn (default 100; with fewer,
                      each sensor is written faster: bench/README.md, design 29)
  --out <dir>         where results go (default bench/results)
  --profile <dir>     record Harper's worker threads during each scenario: <dir>/<system>-<scenario>-t<n>.cpuprofile
                      and a self-time summary on stderr
  --from <file.json>  print the table and targets of a saved run again and redraw its chart
  --help              this text

Scenarios (full run; --quick uses smaller ones):
  tput-mqtt     MQTT publish (QoS 1, retained) -> 1 MQTT subscriber, max rate
  tput-sse      MQTT publish (QoS 1, retained) -> 1 SSE subscriber, max rate
  tput-rest-sse REST PUT /sensors/<id> (8 keep-alive connections) -> 1 SSE subscriber, max rate
  tput-ws       MQTT publish (QoS 1, retained) -> 1 WebSocket subscriber, max rate (Harper only)
  tput-fanout-only  MQTT publish (QoS 1, NOT retained: fanned out, not stored) -> 1 MQTT subscriber
  lat-mqtt      MQTT -> MQTT at 200 msg/s: latency p50/p95/p99/max
  lat-sse       MQTT -> SSE at 200 msg/s: latency p50/p95/p99/max
  fanout-mqtt   1 -> 50 MQTT subscribers at 500 msg/s, latency and server RSS
  fanout-sse    1 -> 50 SSE subscribers at 500 msg/s, latency and server RSS
"Max rate" keeps at most ${200} messages in flight between publisher and subscriber.
Mosquitto alone has no SSE: its SSE rows are n/a; only Harper has WebSocket subscriptions.
The stack's bridge stores every message it sees, retained or not.
Requires the mosquitto binary (Debian: apt-get install mosquitto).`;

const ALL_SYSTEMS: SystemKey[] = ['mosquitto', 'stack', 'component', 'plain', 'history'];

interface SavedRun {
  quick: boolean;
  rounds: number;
  threads: number[];
  systems: SystemKey[];
  scenarios: Scenario[];
  results: Result[];
  /** The storage floor of each round (bench/floor.ts), when the component and the plain table ran. */
  floor?: FloorRound[];
  startedAt: string;
}

function report(run: SavedRun, svgFile: string): void {
  const rows = summarise(run.results, run.scenarios);
  const subtitle = `${run.quick ? 'quick' : 'full'} run, ${run.startedAt}, ${run.rounds} round(s), medians; Harper threads ${run.threads.join(', ')}; local results: do not publish Harper figures (harperdb licence)`;
  console.log('');
  console.log(table(rows, run.scenarios));
  console.log('');
  console.log(
    `Targets (medians of ${run.rounds} round(s), component and plain table with 1 thread each; informative, not a pass/fail test):`,
  );
  for (const line of targets(rows)) console.log(line);
  const floor = floorReport(rows, run.floor ?? [], run.quick);
  if (floor.length > 0) console.log(['', ...floor].join('\n'));
  writeFileSync(svgFile, chart(rows, run.scenarios, subtitle));
  console.log('');
  console.log(`chart: ${relative(process.cwd(), svgFile) || svgFile}`);
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items)
    if (!allowed.includes(item as T)) throw new UsageError(`unknown ${what} "${item}" (one of: ${allowed.join(', ')})`);
  return items as T[];
}

class UsageError extends Error {}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      systems: { type: 'string' },
      scenarios: { type: 'string' },
      threads: { type: 'string' },
      repeat: { type: 'string' },
      sensors: { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'string' },
      from: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.from) {
    report(JSON.parse(readFileSync(values.from, 'utf8')) as SavedRun, values.from.replace(/\.json$/, '') + '.svg');
    return 0;
  }
  const quick = values.quick!;
  const systems = list(values.systems, ALL_SYSTEMS, 'system') ?? ALL_SYSTEMS;
  let scs = scenarios(quick);
  const wanted = list(
    values.scenarios,
    scenarios(false).map((s) => s.key),
    'scenario',
  );
  if (wanted)
    scs = scenarios(quick)
      .concat(scenarios(false))
      .filter((s, i, all) => wanted.includes(s.key) && all.findIndex((o) => o.key === s.key) === i);
  // Harper's thread counts: the full run adds two threads to npm start's one, to show what a
  // second worker thread buys on this machine.
  const threadCounts = (values.threads ?? (quick ? '1' : '1,2')).split(',').map((t) => Number(t.trim()));
  if (threadCounts.some((t) => !Number.isInteger(t) || t < 1))
    throw new UsageError('--threads takes positive integers, e.g. 1 or 1,2');
  if (values.sensors !== undefined) {
    const sensors = Number(values.sensors);
    if (!Number.isInteger(sensors) || sensors < 1) throw new UsageError('--sensors must be a positive integer');
    scs = scs.map((sc) => ({ ...sc, sensors }));
  }
  const rounds = Number(values.repeat ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError('--repeat must be a positive integer');
  // Every round runs each system (each Harper with each thread count) once, one at a time, so
  // the rounds interleave the systems and a disturbance on the machine hits them alike.
  const variants = systems.flatMap((key): { key: SystemKey; threads: number }[] =>
    key === 'component' || key === 'plain' ? threadCounts.map((threads) => ({ key, threads })) : [{ key, threads: 1 }],
  );
  if (!existsSync(resolve(COMPONENT_DIR, 'dist', 'bench', 'stack', 'bridge.js')) && systems.includes('stack'))
    throw new UsageError('dist/bench/stack/bridge.js is missing: run through `npm run bench`, which builds it');

  if (values.profile) mkdirSync(resolve(values.profile), { recursive: true });
  const outDir = resolve(values.out ?? join(COMPONENT_DIR, 'bench', 'results'));
  mkdirSync(outDir, { recursive: true });
  // Scratch (configs, databases, Harper roots, the generated plain-table component) outside the
  // repository: Harper did not serve a component folder nested inside this one.
  const workDir = mkdtempSync(join(tmpdir(), 'backbone-bench-'));

  const started = Date.now();
  say(
    `bench: ${quick ? 'quick' : 'full'} run, ${rounds} round(s), systems ${systems.join(', ')}; Harper threads ${threadCounts.join(', ')}; scenarios ${scs.map((s) => s.key).join(', ')}${values.sensors ? `; ${values.sensors} sensors` : ''}`,
  );
  const results: Result[] = [];
  // The storage floor puts a ceiling on the persisted throughput targets, so it runs when one of
  // them does, with both of the systems they compare, once a round (full run: 20,000 messages a
  // way; --quick: 2,000).
  const floorRounds: FloorRound[] = [];
  const withFloor =
    systems.includes('component') &&
    systems.includes('plain') &&
    scs.some((sc) => PERSISTED_THROUGHPUT.includes(sc.key));
  let current: RunningSystem | undefined;
  const interrupt = () => {
    say('bench: interrupted, stopping the servers');
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  for (let round = 1; round <= rounds; round++) {
    for (const { key, threads } of variants) {
      const name = variantLabel(key, threads) + (rounds > 1 ? ` round ${round}/${rounds}` : '');
      const t = Date.now();
      say(`[${name}] starting`);
      try {
        current = await startSystem(key, workDir, threads, values.profile ? resolve(values.profile) : undefined);
      } catch (error) {
        say(`[${name}] failed to start: ${(error as Error).message}`);
        for (const sc of scs)
          results.push({ system: key, threads, round, scenario: sc.key, error: 'did not start' } as Result);
        continue;
      }
      say(`[${name}] up in ${((Date.now() - t) / 1000).toFixed(1)} s (pids ${current.pids().join(', ')})`);
      try {
        for (const [i, sc] of scs.entries()) {
          if ((sc.via === 'sse' && !current.sseBase) || (sc.via === 'ws' && !current.ws)) continue;
          const label = `[${name}] ${sc.key}`;
          try {
            const stopProfiling =
              values.profile && current.inspectorPort
                ? await startProfiling(current.inspectorPort, threads)
                : undefined;
            const r: Result = { ...(await runScenario(current, sc, (i + 1) * 1_000_000, label)), threads, round };
            if (stopProfiling) {
              const profiles = await stopProfiling();
              profiles.forEach((profile, thread) => {
                const file = join(
                  resolve(values.profile!),
                  `${key}-${threads}t-${sc.key}-r${round}-t${thread}.cpuprofile`,
                );
                writeFileSync(file, JSON.stringify(profile));
                say(
                  `${label}: profile of thread ${thread} in ${relative(process.cwd(), file)}\n${profileSummary(profile)}`,
                );
              });
            }
            results.push(r);
            say(
              `${label}: ${fmt(r.throughput, 0)} msg/s, p50 ${fmt(r.p50, 2)} p99 ${fmt(r.p99, 2)} ms, lost ${r.lost}, dup ${r.duplicates}, server CPU ${fmt(r.cpuUsPerMsg, 0)} µs/msg` +
                (r.rssMb !== undefined ? `, RSS ${fmt(r.rssMb, 0)} MB` : ''),
            );
          } catch (error) {
            say(`${label}: failed: ${(error as Error).message}`);
            results.push({ system: key, threads, round, scenario: sc.key, error: 'failed' } as Result);
          }
        }
      } finally {
        await current.stop();
        current = undefined;
      }
    }
    if (withFloor) {
      const name = `storage floor${rounds > 1 ? ` round ${round}/${rounds}` : ''}`;
      try {
        floorRounds.push(await measureStorageFloor(workDir, quick ? 2_000 : 20_000));
        say(`[${name}] done`);
      } catch (error) {
        say(`[${name}] failed: ${(error as Error).message}`);
      }
    }
  }
  rmSync(workDir, { recursive: true, force: true });

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const run: SavedRun = {
    quick,
    rounds,
    threads: threadCounts,
    systems,
    scenarios: scs,
    results,
    floor: floorRounds,
    startedAt: new Date(started).toISOString(),
  };
  const jsonFile = join(outDir, `bench-${stamp}.json`);
  writeFileSync(jsonFile, JSON.stringify(run, null, 2) + '\n');
  report(run, join(outDir, `bench-${stamp}.svg`));
  console.log(`data:  ${relative(process.cwd(), jsonFile) || jsonFile}`);
  console.log(`took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return results.some((r) => r.error) ? 1 : 0;
}

runMain();

function runMain(): void {
  main().then(
    (code) => process.exit(code),
    (error) => {
      if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        console.error(`bench: ${(error as Error).message}\n\n${HELP}`);
        process.exit(2);
      }
      console.error(error);
      process.exit(1);
    },
  );
}
