/**
 * The load generator's clients, the same for every system: an MQTT publisher and subscribers
 * over MQTT (mqtt.js), SSE (a lean reader on node:http) and WebSocket (ws).
 */
import { randomBytes } from 'node:crypto';
import { request, type ClientRequest } from 'node:http';
import WebSocket from 'ws';
import mqtt, { type MqttClient } from 'mqtt';
import { basicAuth } from '../launcher/harper-process.js';
import type { RunningSystem } from './systems.js';

export interface Sub {
  received: number;
  unique: number;
  duplicates: number;
  ready: boolean;
  close(): void;
}

export function now(): number {
  return performance.timeOrigin + performance.now();
}

export type Target = Pick<RunningSystem, 'mqttUrl' | 'sseBase' | 'auth'>;

/** A WebSocket subscriber (Harper's frames are the SSE ones: one JSON object per message). */
export async function wsSub(system: Target, onValue: (v: unknown) => void): Promise<Sub> {
  const socket = new WebSocket(`${system.sseBase!.replace(/^http/, 'ws')}/sensors/`, {
    headers: system.auth ? { authorization: basicAuth(system.auth) } : {},
  });
  const sub: Sub = { received: 0, unique: 0, duplicates: 0, ready: false, close: () => socket.terminate() };
  socket.on('message', (data) => {
    try {
      onValue((JSON.parse(String(data)) as { value?: unknown }).value);
    } catch {
      // not ours
    }
  });
  await new Promise<void>((open, fail) => {
    socket.once('open', () => open());
    socket.once('error', fail);
  });
  socket.on('error', () => undefined);
  return sub;
}

export async function mqttClient(system: Target, name: string): Promise<MqttClient> {
  return mqtt.connectAsync(system.mqttUrl, {
    clientId: `bench-${name}-${randomBytes(4).toString('hex')}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...(system.auth ? { username: system.auth.username, password: system.auth.password } : {}),
  });
}

/** Counts a delivered reading; latency from the `time` the publisher put in the payload. */
export function makeHandler(
  sub: Sub,
  run: { base: number; count: number; t0: number; seen: Uint8Array[]; latencies: number[]; onProgress: () => void },
  index: number,
) {
  return (value: unknown): void => {
    const at = now();
    if (!value || typeof value !== 'object') return;
    const v = value as { temperature?: unknown; time?: unknown };
    if (typeof v.temperature !== 'number' || typeof v.time !== 'number') return;
    const seq = v.temperature - run.base;
    if (!Number.isInteger(seq) || seq < 0 || seq >= run.count) {
      if (v.temperature === 0 && v.time >= run.t0) sub.ready = true;
      return;
    }
    sub.received++;
    const seen = run.seen[index];
    if (seen[seq]) {
      sub.duplicates++;
      return;
    }
    seen[seq] = 1;
    sub.unique++;
    run.latencies.push(at - v.time);
    run.onProgress();
  };
}

export async function mqttSub(system: Target, onValue: (v: unknown) => void): Promise<Sub> {
  const client = await mqttClient(system, 'sub');
  const sub: Sub = { received: 0, unique: 0, duplicates: 0, ready: false, close: () => void client.end(true) };
  client.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    try {
      onValue(JSON.parse(payload.toString('utf8')));
    } catch {
      // not ours
    }
  });
  await client.subscribeAsync('sensors/#', { qos: 1 });
  return sub;
}

/** A lean SSE client (the same for every system): one socket, `data:` lines of JSON frames. */
export function sseSub(system: Target, onValue: (v: unknown) => void): Promise<Sub> {
  return new Promise((done, fail) => {
    let req: ClientRequest | undefined = undefined;
    const sub: Sub = { received: 0, unique: 0, duplicates: 0, ready: false, close: () => req?.destroy() };
    req = request(
      `${system.sseBase}/sensors/`,
      {
        agent: false,
        headers: { accept: 'text/event-stream', ...(system.auth ? { authorization: basicAuth(system.auth) } : {}) },
      },
      (res) => {
        if (res.statusCode !== 200) {
          fail(new Error(`SSE ${res.statusCode}`));
          res.resume();
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            for (const line of block.split('\n')) {
              if (!line.startsWith('data:')) continue;
              try {
                const frame = JSON.parse(line.slice(5)) as { value?: unknown };
                onValue(frame.value);
              } catch {
                // not ours
              }
            }
          }
        });
      },
    );
    req.on('error', () => undefined); // closing the stream at the end aborts the request
    req.end();
    // Harper flushes the response head with the first event: readiness is decided by warm-up.
    done(sub);
  });
}
