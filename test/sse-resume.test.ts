/**
 * Native SSE resume: every event that is a point in the log carries `id:`, the first event of a
 * stream `retry:`, and the `eventsource` package's own automatic reconnect (the browser's
 * algorithm: Last-Event-ID, after the server's retry time) gets exactly what was written while it
 * was away, on a record stream and a table stream, after the server ended both streams.
 * Its own Harper: announcing a stop (POST /server-notice) ends every stream of the node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSource } from 'eventsource';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { basicAuth, rest } from './harness/rest.js';
import type { EventFrame } from './harness/sse.js';

const RETRY_MS = 3_000;
let server: TestHarper;

beforeAll(async () => {
  server = await startTestHarper({ env: { SSE_RETRY_MS: String(RETRY_MS) } });
}, 120_000);

afterAll(async () => {
  await server?.dispose();
});

const put = async (id: string, temperature: number) => {
  const response = await rest(server.endpoints, 'PUT', `/sensors/${id}`, { json: { location: 'lab', temperature } });
  expect(response.status).toBe(204);
};

/** Reads a raw SSE response until `blocks` events have arrived; returns their blocks. */
async function rawBlocks(
  path: string,
  blocks: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; blocks: string[] }> {
  const controller = new AbortController();
  const response = await fetch(server.endpoints.httpUrl + path, {
    headers: { accept: 'text/event-stream', authorization: basicAuth(server.endpoints.admin), ...headers },
    signal: controller.signal,
  });
  if (response.status !== 200) return { status: response.status, blocks: [await response.text()] };
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body!) {
    text += decoder.decode(chunk as Uint8Array, { stream: true });
    if (text.split('\n\n').length > blocks) break;
  }
  controller.abort();
  return { status: 200, blocks: text.split('\n\n').slice(0, blocks) };
}

interface Received {
  frame: EventFrame;
  lastEventId: string;
}

/** An EventSource as a browser has it: the package's own reconnect; requests noted to check Last-Event-ID. */
function source(path: string) {
  const received: Received[] = [];
  const requests: { at: number; lastEventId: string | null }[] = [];
  const opens: number[] = [];
  const es = new EventSource(server.endpoints.httpUrl + path, {
    fetch: (input, init) => {
      const headers = new Headers(init?.headers);
      requests.push({ at: Date.now(), lastEventId: headers.get('last-event-id') });
      headers.set('authorization', basicAuth(server.endpoints.admin));
      return fetch(input, { ...init, headers });
    },
  });
  es.onmessage = (event) =>
    received.push({ frame: JSON.parse(event.data) as EventFrame, lastEventId: event.lastEventId });
  es.addEventListener('open', () => opens.push(Date.now()));
  return { es, received, requests, opens };
}

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const temperatureOf = (frame: EventFrame) => (frame.value as { temperature?: number } | undefined)?.temperature;
const isError = (item: Received) => item.frame.type === 'error';

describe('SSE resume', () => {
  it('each event carries its localTime as id:, the first one retry:; a table stream’s initial state carries no id', async () => {
    await put('raw-1', 1);
    await put('raw-2', 2);
    const record = await rawBlocks('/sensors/raw-1', 1);
    const [first] = record.blocks;
    const data = JSON.parse(/^data: (.*)$/m.exec(first)![1]) as EventFrame;
    expect(data).toMatchObject({ id: 'raw-1', type: 'put', value: { temperature: 1 } });
    expect(/^id: (.*)$/m.exec(first)?.[1]).toBe(String(data.localTime));
    expect(/^retry: (.*)$/m.exec(first)?.[1]).toBe(String(RETRY_MS));

    const table = rawBlocks('/sensors/', 3);
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the table stream start
    await put('raw-1', 3);
    const { blocks } = await table;
    expect(blocks.slice(0, 2).map((block) => /^id: /m.test(block))).toEqual([false, false]); // initial state
    expect(JSON.parse(/^data: (.*)$/m.exec(blocks[2])![1])).toMatchObject({ id: 'raw-1', value: { temperature: 3 } });
    expect(/^id: (.*)$/m.exec(blocks[2])?.[1]).toBe(
      String((JSON.parse(/^data: (.*)$/m.exec(blocks[2])![1]) as EventFrame).localTime),
    );
  });

  it('a Last-Event-ID that is not a time is refused with 400 invalid_query', async () => {
    const { status, blocks } = await rawBlocks('/sensors/raw-1', 1, { 'last-event-id': 'yesterday' });
    expect(status).toBe(400);
    // Harper answers a refused stream in the stream's own format.
    expect(JSON.parse(/^data: (.*)$/m.exec(blocks[0])?.[1] ?? blocks[0])).toMatchObject({
      error: 'invalid_query',
      field: 'Last-Event-ID',
    });
  });

  it('after the server ends the streams, EventSource reconnects by itself with Last-Event-ID and receives exactly the writes of the gap, on a record and a table', async () => {
    const before = Date.now() - 1;
    await put('gap-a', 0);
    // The record stream is opened with ?startTime= (replaying write 0); on reconnect the URL still
    // says so, and Last-Event-ID must win (else 0 and 1 would come again).
    const record = source(`/sensors/gap-a?startTime=${before}`);
    const table = source('/sensors/');
    try {
      await until('write 0 on the record stream', () =>
        record.received.some((item) => temperatureOf(item.frame) === 0),
      );
      await until('the table stream', () => table.received.length >= 1);
      await put('gap-a', 1);
      await put('gap-b', 1);
      await until(
        'the live writes',
        () =>
          record.received.some((item) => temperatureOf(item.frame) === 1) &&
          table.received.filter((item) => temperatureOf(item.frame) === 1).length === 2,
      );
      const lastIdBefore = { record: record.received.at(-1)!.lastEventId, table: table.received.at(-1)!.lastEventId };
      expect(lastIdBefore.record).toBe(String(record.received.at(-1)!.frame.localTime));
      expect(lastIdBefore.table).toBe(String(table.received.at(-1)!.frame.localTime));
      const seenBefore = { record: record.received.length, table: table.received.length };

      // The server ends every stream (as before a restart); each client gets a last error event.
      const notice = await rest(server.endpoints, 'POST', '/server-notice', { json: { message: 'test' } });
      expect(notice.status >= 200 && notice.status < 300).toBe(true);
      await until('the end of both streams', () => record.received.some(isError) && table.received.some(isError));

      // Written while the clients are away (they come back after RETRY_MS).
      for (let i = 2; i <= 6; i++) await put('gap-a', i);
      for (let i = 2; i <= 4; i++) await put('gap-b', i);
      const gapWritten = Date.now();

      await until('both reconnected', () => record.requests.length === 2 && table.requests.length === 2);
      // The reconnects were made by the package, after the gap's writes, from where each stood.
      expect(record.requests[1].at).toBeGreaterThan(gapWritten);
      expect(table.requests[1].at).toBeGreaterThan(gapWritten);
      expect(record.requests[1].lastEventId).toBe(lastIdBefore.record);
      expect(table.requests[1].lastEventId).toBe(lastIdBefore.table);

      await put('gap-a', 7);
      await put('gap-b', 5);
      await until(
        'the live writes after the resume',
        () =>
          record.received.some((item) => temperatureOf(item.frame) === 7) &&
          table.received.some((item) => item.frame.id === 'gap-b' && temperatureOf(item.frame) === 5),
      );
      await new Promise((resolve) => setTimeout(resolve, 500)); // anything extra would arrive now

      const after = (list: Received[], seen: number) =>
        list
          .slice(seen)
          .filter((item) => !isError(item))
          .map((item) => `${item.frame.id}=${temperatureOf(item.frame)}`);
      expect(after(record.received, seenBefore.record)).toEqual([
        'gap-a=2',
        'gap-a=3',
        'gap-a=4',
        'gap-a=5',
        'gap-a=6',
        'gap-a=7',
      ]);
      const tableAfter = after(table.received, seenBefore.table);
      expect(tableAfter.filter((item) => item.startsWith('gap-a='))).toEqual([
        'gap-a=2',
        'gap-a=3',
        'gap-a=4',
        'gap-a=5',
        'gap-a=6',
        'gap-a=7',
      ]);
      expect(tableAfter.filter((item) => item.startsWith('gap-b='))).toEqual([
        'gap-b=2',
        'gap-b=3',
        'gap-b=4',
        'gap-b=5',
      ]);
      expect(tableAfter).toHaveLength(10);
      // Each replayed event is itself a resume point.
      expect(record.received.at(-1)!.lastEventId).toBe(String(record.received.at(-1)!.frame.localTime));
    } finally {
      record.es.close();
      table.es.close();
    }
  }, 90_000);
});
