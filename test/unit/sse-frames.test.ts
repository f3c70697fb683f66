/**
 * SSE framing (lib/streams/sse-frames.ts) with a stand-in for Harper's serializer that counts its
 * calls: which events carry `id:` and `retry:`, and that one commit's events, one object per
 * subscriber, are serialised once and framed alike for every stream.
 */
import { describe, expect, it } from 'vitest';
import { streamFramer } from '../../lib/streams/sse-frames.js';

const RETRY = 2_000;

/** Harper's serializer for the events these tests send: `data: <json>` and a blank line. */
function serializer() {
  const calls: unknown[] = [];
  const serialize = (event: unknown) => {
    calls.push(event);
    return `data: ${JSON.stringify(event)}\n\n`;
  };
  return { calls, serialize };
}

/** One commit's event as Harper builds it for each subscriber: a new object, the shared record. */
const eventOf = (record: object, localTime: number, id = 's1') => ({
  id,
  localTime,
  value: record,
  version: localTime,
  type: 'put',
});

describe('SSE framing', () => {
  it('gives a live event an id line, and a stream its retry line on the first event only', () => {
    const { serialize } = serializer();
    const frame = streamFramer(serialize, -Infinity, RETRY);
    const record = { id: 's1', temperature: 20 };
    const first = frame(eventOf(record, 100)) as string;
    const second = frame(eventOf({ id: 's1', temperature: 21 }, 101)) as string;
    expect(first).toBe(`data: ${JSON.stringify(eventOf(record, 100))}\nid: 100\nretry: ${RETRY}\n\n`);
    expect(second).toMatch(/^data: .*"temperature":21.*\nid: 101\n\n$/);
  });

  it('serialises one commit once for every stream, each stream still framing its own first event', () => {
    const { calls, serialize } = serializer();
    const record = { id: 's1', temperature: 20 };
    const streams = Array.from({ length: 50 }, () => streamFramer(serialize, -Infinity, RETRY));
    const blocks = streams.map((frame) => frame(eventOf(record, 100)) as string);
    expect(calls).toHaveLength(1);
    expect(new Set(blocks).size).toBe(1);
    expect(blocks[0]).toContain(`id: 100\nretry: ${RETRY}\n\n`);

    const next = { id: 's1', temperature: 21 };
    const later = streams.map((frame) => frame(eventOf(next, 101)) as string);
    expect(calls).toHaveLength(2);
    for (const block of later) expect(block).toBe(`data: ${JSON.stringify(eventOf(next, 101))}\nid: 101\n\n`);
  });

  it('serialises again when anything but the object identity differs: time, id, type or an extra field', () => {
    const { calls, serialize } = serializer();
    const frame = streamFramer(serialize, -Infinity, RETRY);
    const record = { id: 's1', temperature: 20 };
    frame(eventOf(record, 100));
    const variants = [
      eventOf(record, 101),
      eventOf(record, 100, 's2'),
      { ...eventOf(record, 100), type: 'message' },
      { ...eventOf(record, 100), beginTxn: true },
      { id: 's1', localTime: 100, value: record, version: 100 },
    ];
    const blocks = variants.map((event) => frame(event) as string);
    expect(calls).toHaveLength(1 + variants.length);
    blocks.forEach((block, i) =>
      expect(block).toBe(`data: ${JSON.stringify(variants[i])}\nid: ${variants[i].localTime}\n\n`),
    );
    // An equal record that is another object is another commit's, or another record's: not shared.
    frame(eventOf({ ...record }, 100));
    expect(calls).toHaveLength(2 + variants.length);
  });

  it('frames a table stream’s initial state without ids, and never shares it', () => {
    const { calls, serialize } = serializer();
    const snapshotAt = 500;
    const frame = streamFramer(serialize, snapshotAt, RETRY);
    const record = { id: 's1', temperature: 20 };
    const initial = { ...eventOf(record, 400), size: 1 };
    expect(frame(initial)).toBe(`data: ${JSON.stringify(initial)}\nretry: ${RETRY}\n\n`);
    // The same record read after the snapshot time but as initial state (it has a size): no id.
    const late = { ...eventOf(record, 600), size: 1 };
    expect(frame(late)).toBe(`data: ${JSON.stringify(late)}\n\n`);
    // A live event of another stream then gets its id, not a shared block without one.
    const live = streamFramer(serialize, -Infinity, RETRY);
    expect(live(eventOf(record, 400))).toContain('id: 400\n');
    expect(calls).toHaveLength(3);
  });

  it('serialises an event that carries an acknowledgement every time (the serializer sends it)', () => {
    const acknowledged: number[] = [];
    const serialize = (event: unknown) => {
      (event as { acknowledge?: () => void }).acknowledge?.();
      return 'data: {}\n\n';
    };
    const record = { id: 's1' };
    const acknowledge = () => acknowledged.push(1);
    const frames = [streamFramer(serialize, -Infinity, RETRY), streamFramer(serialize, -Infinity, RETRY)];
    for (const frame of frames) frame({ ...eventOf(record, 100), acknowledge });
    expect(acknowledged).toHaveLength(2);
  });

  it('leaves events without a time (not points in the log) without an id', () => {
    const { serialize } = serializer();
    const frame = streamFramer(serialize, -Infinity, RETRY);
    frame(eventOf({ id: 's1' }, 1));
    expect(frame({ type: 'error', value: { error: 'slow_consumer' } })).toBe(
      `data: ${JSON.stringify({ type: 'error', value: { error: 'slow_consumer' } })}\n\n`,
    );
  });
});
