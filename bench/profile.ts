/**
 * CPU profiles of Harper's worker threads for `npm run bench -- --profile <dir>`.
 *
 * `node --cpu-prof` profiles only Harper's main thread (its workers are ended without the exit
 * that writes a profile), and the main thread does no request work. Harper opens a V8 inspector
 * per worker thread when `THREADS_DEBUG` is on (`THREADS_DEBUG_STARTINGPORT` + the worker index),
 * so the benchmark records each scenario through the inspector's `Profiler` domain instead and
 * writes `<system>-<scenario>-t<thread>.cpuprofile` files (open them in Chrome DevTools, or read
 * the summary `summarise` prints: self time by function, ours against Harper's).
 */
import { request } from 'node:http';
import WebSocket from 'ws';

/** Environment that makes Harper open an inspector per worker thread from `port` on. */
export function inspectorEnvironment(port: number): Record<string, string> {
  return { THREADS_DEBUG: 'true', THREADS_DEBUG_STARTINGPORT: String(port), THREADS_DEBUG_HOST: '127.0.0.1' };
}

function debuggerUrl(port: number): Promise<string> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path: '/json/list' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const targets = JSON.parse(body) as { webSocketDebuggerUrl?: string }[];
        const url = targets[0]?.webSocketDebuggerUrl;
        if (url) done(url);
        else fail(new Error(`no inspector target on port ${port}`));
      });
    });
    req.on('error', fail);
    req.end();
  });
}

/** One connection to one thread's inspector, speaking the DevTools protocol. */
class Inspector {
  private nextId = 1;
  private waiting = new Map<number, (result: unknown) => void>();
  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.waiting.get(message.id)?.(message.result);
    });
  }

  static async open(port: number): Promise<Inspector> {
    const socket = new WebSocket(await debuggerUrl(port));
    await new Promise<void>((open, fail) => {
      socket.once('open', () => open());
      socket.once('error', fail);
    });
    return new Inspector(socket);
  }

  call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((done) => {
      this.waiting.set(id, (result) => {
        this.waiting.delete(id);
        done(result as T);
      });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.socket.close();
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Records every worker thread from `port` on (threads `count`) until `stop` is called. */
export async function startProfiling(port: number, count: number): Promise<() => Promise<CpuProfile[]>> {
  const inspectors = await Promise.all(Array.from({ length: count }, (_, i) => Inspector.open(port + i)));
  for (const inspector of inspectors) {
    await inspector.call('Profiler.enable');
    await inspector.call('Profiler.setSamplingInterval', { interval: 200 });
    await inspector.call('Profiler.start');
  }
  return async () => {
    const profiles: CpuProfile[] = [];
    for (const inspector of inspectors) {
      profiles.push((await inspector.call<{ profile: CpuProfile }>('Profiler.stop')).profile);
      inspector.close();
    }
    return profiles;
  };
}

/** Where a function comes from, for the summary: our compiled code, Harper, Node, or V8 itself. */
function originOf(url: string, name: string): string {
  if (url.includes('/dist/lib/') || url.includes('/dist/shared/') || url.includes('/dist/resources')) return 'ours';
  if (url.includes('harperdb') || url.includes('/lmdb/') || url.includes('msgpackr') || url.includes('mqtt-packet'))
    return 'harper';
  if (url.startsWith('node:')) return 'node';
  if (name === '(garbage collector)') return 'gc';
  if (name === '(idle)' || name === '(program)') return name;
  return url ? 'other' : 'native';
}

/** Self time per function (top `limit`) and per origin, in ms and share of the profile. */
export function summarise(profile: CpuProfile, limit = 25): string {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + (deltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  for (const [id, micros] of self) {
    const frame = byNode.get(id)!.callFrame;
    const file = frame.url.split('/').slice(-2).join('/');
    const key = `${frame.functionName || '(anonymous)'}  ${file}:${frame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
    const origin = originOf(frame.url, frame.functionName);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + micros);
  }
  const line = ([name, micros]: [string, number]) =>
    `${(micros / 1000).toFixed(0).padStart(7)} ms ${((100 * micros) / total).toFixed(1).padStart(5)} %  ${name}`;
  const sorted = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  return [
    '  by origin:',
    ...sorted(byOrigin).map(line),
    '  top functions (self time):',
    ...sorted(byFunction).slice(0, limit).map(line),
  ].join('\n');
}
