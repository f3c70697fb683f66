/**
 * The block of text one subscription event becomes on a `text/event-stream` response: Harper's
 * own serialisation of the event, with an `id:` line when the event is a point in the log and a
 * `retry:` line on a stream's first event (why, and which events are points in the log:
 * lib/streams/sse-resume.ts, which puts this framing in front of Harper's serializer).
 *
 * One block per commit, not per subscriber. Harper gives every subscriber of a record its own
 * event object for one commit, but with the same fields and the same record (decoded once per
 * commit and shared), and its serializer JSON-encodes each: fifty SSE subscribers of a table cost
 * fifty identical encodings per write. A live event's block is therefore kept, keyed by the
 * record it carries, and handed to every later event of the same commit; an event is of the same
 * commit when each of its fields is the very same value as the first's (the same record object,
 * the same time, id, version and type). Comparing them costs a few reads; what it saves grows
 * with the record and the number of subscribers. The cache holds nothing alive: an entry goes
 * when the record object does.
 */

/** Harper's serialisation of one event (its `text/event-stream` serializer). */
export type Serialize = (event: unknown) => unknown;

type EventFields = Record<string, unknown>;

interface Framed {
  event: EventFields;
  block: string;
}

/** Per record object: the framed block of the live event that carried it first. */
const framedBlocks = new WeakMap<object, Framed>();

/** True when `a` and `b` have the same own fields holding the very same values. */
function sameFields(a: EventFields, b: EventFields): boolean {
  let fields = 0;
  for (const key in a) {
    if (a[key] !== b[key]) return false;
    fields++;
  }
  for (const key in b) {
    if (!(key in a)) return false;
    fields--;
  }
  return fields === 0;
}

/** Adds `lines` to a block, inside the event: before the blank line that ends it. */
function withLines(block: unknown, lines: string): unknown {
  return typeof block === 'string' && block.endsWith('\n\n') ? block.slice(0, -1) + lines + '\n' : block;
}

/** The block of a live event at `time`, with its `id:` line: the one of its commit if already framed. */
function liveBlock(event: EventFields, time: number, serialize: Serialize): unknown {
  const record = event.value;
  // An event with an acknowledgement to send (a durable session's) is serialised every time:
  // Harper's serializer is what acknowledges it.
  const shareable = typeof record === 'object' && record !== null && typeof event.acknowledge !== 'function';
  if (shareable) {
    const framed = framedBlocks.get(record);
    if (framed && sameFields(framed.event, event)) return framed.block;
  }
  const block = withLines(serialize(event), `id: ${time}\n`);
  if (shareable && typeof block === 'string') framedBlocks.set(record, { event, block });
  return block;
}

/**
 * The framing of one stream: each event's block, given the time before which the stream's events
 * are a table's initial state (`-Infinity` when it has none) and the `retry:` time (ms).
 */
export function streamFramer(
  serialize: Serialize,
  snapshotBefore: number,
  retryMs: number,
): (event: unknown) => unknown {
  let first = true;
  return (event) => {
    const fields = event as EventFields | null;
    const time = fields?.localTime;
    // Harper's initial-state events of a table carry a `size`; its live events do not. The time
    // check alone would give an id to a record written between the subscription and its reading.
    const initial =
      snapshotBefore !== -Infinity &&
      typeof time === 'number' &&
      (time < snapshotBefore || Object.hasOwn(fields!, 'size'));
    const block = typeof time === 'number' && !initial ? liveBlock(fields!, time, serialize) : serialize(event);
    if (!first) return block;
    first = false;
    return withLines(block, `retry: ${retryMs}\n`);
  };
}
