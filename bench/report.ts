/**
 * What `npm run bench` prints and draws: the results of every round, summarised per system,
 * thread count and scenario as the median with its min-max spread, the ratios against this
 * component, the targets, and an SVG chart. Also used by `--from` to print a saved run again.
 */
export type SystemKey = 'mosquitto' | 'stack' | 'component' | 'plain' | 'history';

export const SYSTEM_LABELS: Record<SystemKey, string> = {
  mosquitto: '(a) mosquitto',
  stack: '(b) stack',
  component: '(c) component',
  plain: '(d) plain table',
  history: '(e) table+history',
};

export interface Scenario {
  key: string;
  title: string;
  via: 'mqtt' | 'sse' | 'ws';
  /** The publisher: MQTT (default) or REST PUT /sensors/<id>. */
  pub?: 'mqtt' | 'rest';
  /** false: a non-retained publish (fanned out, not stored, by Harper and Mosquitto). */
  retain?: boolean;
  subscribers: number;
  /** max: as fast as the window allows; rate: fixed msg/s for `seconds`. */
  mode: 'max' | 'rate';
  count: number;
  rate?: number;
  rss?: boolean;
  /** Sensors the messages go to in turn (default SENSORS_PER_SCENARIO, bench/scenario.ts). */
  sensors?: number;
}

/** One scenario against one system in one round. */
export interface Result {
  system: SystemKey;
  /** Harper's worker threads (1 for the systems that are not Harper). */
  threads: number;
  round: number;
  scenario: string;
  sent: number;
  expected: number;
  received: number;
  lost: number;
  duplicates: number;
  /** Deliveries per second over all subscribers (max rate: unique messages per second). */
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  rssMb?: number;
  /** The server's CPU time (all its processes and threads) per message delivered, µs. */
  cpuUsPerMsg?: number;
  error?: string;
}

/** The median of every round of one system, thread count and scenario. */
export interface Summary extends Omit<Result, 'round'> {
  rounds: number;
  /** Min and max over the rounds of what the scenario is judged on (throughput, or p99). */
  spread: [number, number];
}

export function variantLabel(system: SystemKey, threads: number): string {
  return threads > 1 ? `${SYSTEM_LABELS[system]} ${threads}t` : SYSTEM_LABELS[system];
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const judgedOn = (scenario: Scenario | undefined) => (r: Result) => (scenario?.mode === 'rate' ? r.p99 : r.throughput);

/** Rounds folded into medians, in the order systems first appear in `results`. */
export function summarise(results: Result[], scs: Scenario[]): Summary[] {
  const groups = new Map<string, Result[]>();
  for (const r of results) {
    const key = `${r.system}/${r.threads}/${r.scenario}`;
    const list = groups.get(key) ?? [];
    list.push(r);
    groups.set(key, list);
  }
  const rows: Summary[] = [];
  for (const runs of groups.values()) {
    const ok = runs.filter((r) => !r.error);
    const first = runs[0];
    if (ok.length === 0) {
      rows.push({ ...first, rounds: 0, spread: [NaN, NaN] });
      continue;
    }
    const of = (pick: (r: Result) => number) => median(ok.map(pick));
    const judged = ok.map(judgedOn(scs.find((s) => s.key === first.scenario)));
    rows.push({
      system: first.system,
      threads: first.threads,
      scenario: first.scenario,
      sent: of((r) => r.sent),
      expected: of((r) => r.expected),
      received: of((r) => r.received),
      // Losses and duplicates: the worst round, since one round with a loss is a loss.
      lost: Math.max(...ok.map((r) => r.lost)),
      duplicates: Math.max(...ok.map((r) => r.duplicates)),
      throughput: of((r) => r.throughput),
      p50: of((r) => r.p50),
      p95: of((r) => r.p95),
      p99: of((r) => r.p99),
      max: of((r) => r.max),
      ...(ok.some((r) => r.rssMb !== undefined) ? { rssMb: of((r) => r.rssMb ?? NaN) } : {}),
      cpuUsPerMsg: of((r) => r.cpuUsPerMsg ?? NaN),
      ...(ok.length < runs.length ? { error: `${runs.length - ok.length} of ${runs.length} rounds failed` } : {}),
      rounds: ok.length,
      spread: [Math.min(...judged), Math.max(...judged)],
    });
  }
  return rows;
}

export function fmt(n: number | undefined, digits = 1): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(digits);
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}

/** The component with one thread (npm start's default): what every ratio is taken against. */
const reference = (rows: Summary[], scenario: string) =>
  rows.find((r) => r.system === 'component' && r.threads === 1 && r.scenario === scenario && r.rounds > 0);

export function table(rows: Summary[], scs: Scenario[]): string {
  const header = [
    'scenario',
    'system',
    'sent',
    'delivered',
    'lost',
    'dup',
    'msg/s',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'max ms',
    'RSS MB',
    'CPU µs/msg',
    'spread',
    'vs (c)',
  ];
  const lines: string[][] = [];
  for (const sc of scs) {
    const c = reference(rows, sc.key);
    for (const r of rows.filter((row) => row.scenario === sc.key)) {
      const label = variantLabel(r.system, r.threads);
      if (r.rounds === 0) {
        lines.push([sc.key, label, r.error ?? 'failed', '', '', '', '', '', '', '', '', '', '', '', '']);
        continue;
      }
      // Ratios against (c): throughput for max-rate scenarios (higher is better), p99 for fixed
      // rates (lower is better). The spread is the min-max of that measure over the rounds.
      const ratio = !c
        ? '-'
        : sc.mode === 'max'
          ? `${fmt(r.throughput / c.throughput, 2)}x tput`
          : `${fmt(r.p99 / c.p99, 2)}x p99`;
      const spread =
        r.rounds > 1
          ? `${fmt(r.spread[0], sc.mode === 'max' ? 0 : 1)}-${fmt(r.spread[1], sc.mode === 'max' ? 0 : 1)}`
          : '';
      lines.push([
        sc.key,
        label + (r.error ? ' !' : ''),
        fmt(r.sent, 0),
        fmt(r.received - r.duplicates, 0),
        String(r.lost),
        String(r.duplicates),
        fmt(r.throughput, 0),
        fmt(r.p50, 2),
        fmt(r.p95, 2),
        fmt(r.p99, 2),
        fmt(r.max, 2),
        fmt(r.rssMb, 0),
        fmt(r.cpuUsPerMsg, 0),
        spread,
        ratio,
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  return [pad(header, widths), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map((l) => pad(l, widths))].join(
    '\n',
  );
}

/** The persisted max-rate scenarios: the throughput targets, and what the storage floor bounds. */
export const PERSISTED_THROUGHPUT = ['tput-mqtt', 'tput-sse', 'tput-ws', 'tput-rest-sse'];

/**
 * The targets of the component against a plain Harper table, on the medians, both with one
 * worker thread: the component may cost (almost) nothing over Harper itself.
 */
export function targets(rows: Summary[]): string[] {
  const get = (system: SystemKey, scenario: string) =>
    rows.find((r) => r.system === system && r.threads === 1 && r.scenario === scenario && r.rounds > 0);
  const lines: string[] = [];
  const check = (name: string, value: number | undefined, ok: (v: number) => boolean, shown: (v: number) => string) => {
    if (value === undefined || !Number.isFinite(value)) lines.push(`  [ n/a ] ${name}`);
    else lines.push(`  [${ok(value) ? ' met ' : ' MISS'}] ${name}: ${shown(value)}`);
  };
  const ratio = (scenario: string, of: (r: Summary) => number, against: SystemKey = 'plain') => {
    const c = get('component', scenario);
    const other = get(against, scenario);
    return c && other ? of(c) / of(other) : undefined;
  };
  const x = (v: number) => `${fmt(v, 2)}x`;
  for (const scenario of PERSISTED_THROUGHPUT) {
    check(
      `${scenario}: component >= 1.0x the plain table's throughput (first milestone 0.85x)`,
      ratio(scenario, (r) => r.throughput),
      (v) => v >= 1,
      (v) => `${x(v)}${v < 1 ? (v >= 0.85 ? ' (milestone met)' : ' (milestone missed)') : ''}`,
    );
  }
  check(
    "tput-fanout-only: component >= 0.9x the plain table's throughput",
    ratio('tput-fanout-only', (r) => r.throughput),
    (v) => v >= 0.9,
    x,
  );
  for (const scenario of ['lat-mqtt', 'lat-sse']) {
    check(
      `${scenario}: component p99 <= 1.5x the plain table's`,
      ratio(scenario, (r) => r.p99),
      (v) => v <= 1.5,
      x,
    );
  }
  for (const scenario of ['fanout-mqtt', 'fanout-sse']) {
    check(
      `${scenario}: component loses nothing`,
      get('component', scenario)?.lost,
      (v) => v === 0,
      (v) => `${v} lost`,
    );
    check(
      `${scenario}: component p99 <= 1.5x the plain table's`,
      ratio(scenario, (r) => r.p99),
      (v) => v <= 1.5,
      x,
    );
  }
  check(
    "stretch, lat-sse: component p99 <= 2x the stack's",
    ratio('lat-sse', (r) => r.p99, 'stack'),
    (v) => v <= 2,
    x,
  );
  // Not targets: the component against (e), the same data model written the plainest way, which
  // tells our code's cost apart from that of storing a reading per message (bench/README.md).
  const info = (name: string, value: number | undefined) =>
    lines.push(`  [ info] ${name}${value === undefined || !Number.isFinite(value) ? ': n/a' : `: ${x(value)}`}`);
  for (const scenario of PERSISTED_THROUGHPUT)
    info(
      `${scenario}: component's throughput / (e) table+history's`,
      ratio(scenario, (r) => r.throughput, 'history'),
    );
  for (const scenario of ['lat-mqtt', 'lat-sse'])
    info(
      `${scenario}: component's p99 / (e) table+history's`,
      ratio(scenario, (r) => r.p99, 'history'),
    );
  return lines;
}

const COLORS: Record<SystemKey, string> = {
  mosquitto: '#7f7f7f',
  stack: '#1f77b4',
  component: '#d62728',
  plain: '#ff7f0e',
  history: '#2ca02c',
};

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/**
 * Two panels of grouped bars (medians): throughput of the max-rate scenarios (linear scale) and
 * p99 latency of the fixed-rate ones (log scale: they span sub-millisecond to seconds). Bars of a
 * second thread count are drawn lighter.
 */
export function chart(rows: Summary[], scs: Scenario[], subtitle: string): string {
  const variants = [
    ...new Map(rows.map((r) => [`${r.system}/${r.threads}`, { system: r.system, threads: r.threads }])).values(),
  ];
  const panels = [
    {
      title: 'throughput, msg/s (higher is better)',
      log: false,
      scs: scs.filter((s) => s.mode === 'max'),
      value: (r: Summary) => r.throughput,
    },
    {
      title: 'p99 latency, ms, log scale (lower is better)',
      log: true,
      scs: scs.filter((s) => s.mode === 'rate'),
      value: (r: Summary) => r.p99,
    },
  ].filter((p) => p.scs.length);
  const W = 900;
  const panelH = 260;
  const parts: string[] = [];
  parts.push(`<text x="20" y="28" font-size="18" font-weight="bold">npm run bench</text>`);
  parts.push(`<text x="20" y="48" font-size="12" fill="#555">${escapeXml(subtitle)}</text>`);
  variants.forEach((v, i) => {
    const x = 20 + (i % 5) * 170;
    const y = 60 + Math.floor(i / 5) * 16;
    parts.push(
      `<rect x="${x}" y="${y}" width="12" height="12" fill="${COLORS[v.system]}" fill-opacity="${v.threads > 1 ? 0.5 : 1}"/>`,
    );
    parts.push(
      `<text x="${x + 16}" y="${y + 11}" font-size="12">${escapeXml(variantLabel(v.system, v.threads))}</text>`,
    );
  });
  let y = 80 + Math.ceil(variants.length / 5) * 16;
  for (const panel of panels) {
    const values = rows
      .filter((r) => r.rounds > 0 && panel.scs.some((s) => s.key === r.scenario))
      .map(panel.value)
      .filter((v) => Number.isFinite(v) && v > 0);
    const maxV = Math.max(1e-9, ...values);
    // Linear: 0..max. Log: decades from 0.1 ms (or lower) to the decade above the largest value.
    const lo = panel.log ? Math.min(-1, Math.floor(Math.log10(Math.min(...values, 0.1)))) : 0;
    const hi = panel.log ? Math.max(lo + 1, Math.ceil(Math.log10(maxV))) : maxV;
    const scale = (v: number): number => (panel.log ? (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo) : v / hi);
    const left = 70;
    const plotW = W - left - 20;
    const plotTop = y + 30;
    const plotH = panelH - 70;
    parts.push(`<text x="20" y="${y + 16}" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`);
    const ticks = panel.log
      ? Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i))
      : [0, 1, 2, 3, 4].map((t) => (maxV * t) / 4);
    for (const v of ticks) {
      const ty = plotTop + plotH - plotH * scale(v);
      parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`);
      parts.push(
        `<text x="${left - 6}" y="${ty + 4}" font-size="10" text-anchor="end">${v < 1 ? String(v) : fmt(v, 0)}</text>`,
      );
    }
    const groupW = plotW / panel.scs.length;
    const barW = Math.min(40, (groupW - 20) / variants.length);
    panel.scs.forEach((sc, g) => {
      const gx = left + g * groupW + (groupW - barW * variants.length) / 2;
      variants.forEach((variant, i) => {
        const r = rows.find(
          (row) =>
            row.system === variant.system &&
            row.threads === variant.threads &&
            row.scenario === sc.key &&
            row.rounds > 0,
        );
        const v = r ? panel.value(r) : NaN;
        const x = gx + i * barW;
        if (!Number.isFinite(v)) {
          parts.push(
            `<text x="${x + barW / 2}" y="${plotTop + plotH - 4}" font-size="9" text-anchor="middle" fill="#999">n/a</text>`,
          );
          return;
        }
        const h = Math.max(1, plotH * scale(v));
        const label = `${variantLabel(variant.system, variant.threads)} ${sc.key}: ${fmt(v, 2)}`;
        parts.push(
          `<rect x="${x}" y="${plotTop + plotH - h}" width="${barW - 2}" height="${h}" fill="${COLORS[variant.system]}" fill-opacity="${variant.threads > 1 ? 0.5 : 1}"><title>${escapeXml(label)}</title></rect>`,
        );
        parts.push(
          `<text x="${x + barW / 2 - 1}" y="${plotTop + plotH - h - 3}" font-size="9" text-anchor="middle">${fmt(v, v < 10 ? 1 : 0)}</text>`,
        );
      });
      parts.push(
        `<text x="${left + g * groupW + groupW / 2}" y="${plotTop + plotH + 16}" font-size="11" text-anchor="middle">${escapeXml(sc.title)}</text>`,
      );
    });
    y += panelH;
  }
  const H = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
