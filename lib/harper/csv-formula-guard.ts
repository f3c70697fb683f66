/**
 * `Accept: text/csv` (REST queries such as /readings/?...): Harper's own CSV writer, with text that
 * a spreadsheet would run as a formula made inert. A device chooses its `location` (and topic
 * payloads are free text), so a cell like `=HYPERLINK(...)` or `@SUM(...)` would otherwise reach an
 * operator's spreadsheet as a formula. Text cells that start with `=`, `+`, `-`, `@`, a tab or a
 * carriage return get a leading `'` (the usual neutralisation; spreadsheets show the text as is).
 * Only the CSV output changes: JSON, CBOR, MessagePack, SSE, WebSocket and MQTT carry the value
 * exactly as stored. Numbers (a negative temperature) are not text and stay as they are.
 */
import { server } from 'harperdb';

interface Serializer {
  serialize?(data: unknown, response: unknown): unknown;
  serializeStream?(data: unknown, response: unknown): unknown;
  [key: string]: unknown;
}

const FORMULA_START = /^[=+\-@\t\r]/;

export function neutraliseCell(value: unknown): unknown {
  return typeof value === 'string' && FORMULA_START.test(value) ? `'${value}` : value;
}

function neutraliseRecord(record: unknown): unknown {
  if (record === null || typeof record !== 'object') return neutraliseCell(record);
  const plain =
    typeof (record as { toJSON?: unknown }).toJSON === 'function' ? (record as { toJSON(): unknown }).toJSON() : record;
  if (plain === null || typeof plain !== 'object') return neutraliseCell(plain);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(plain as Record<string, unknown>)) out[key] = neutraliseCell(value);
  return out;
}

async function* neutraliseAll(records: AsyncIterable<unknown> | Iterable<unknown>): AsyncGenerator<unknown> {
  for await (const record of records) yield neutraliseRecord(record);
}

/** Query results are (async) iterables with the selected columns; a single record is neither. */
function neutralised(data: unknown): unknown {
  const iterable = data as {
    [Symbol.iterator]?: unknown;
    [Symbol.asyncIterator]?: unknown;
    getColumns?: () => unknown;
  } | null;
  if (
    iterable &&
    typeof iterable === 'object' &&
    !Array.isArray(iterable) &&
    (iterable[Symbol.iterator] || iterable[Symbol.asyncIterator])
  ) {
    const columns = iterable.getColumns?.();
    const mapped = neutraliseAll(iterable as AsyncIterable<unknown>) as AsyncGenerator<unknown> & {
      getColumns?: () => unknown;
    };
    if (columns !== undefined) mapped.getColumns = () => columns;
    return mapped;
  }
  if (Array.isArray(data)) return data.map(neutraliseRecord);
  return neutraliseRecord(data);
}

// Harper's registry of content types (also exported as `contentTypes`, which its typings omit).
const registry = (server as unknown as { contentTypes: Map<string, Serializer> }).contentTypes;
const harperCsv = registry.get('text/csv');
if (harperCsv) {
  registry.set('text/csv', {
    ...harperCsv,
    serialize: harperCsv.serialize && ((data, response) => harperCsv.serialize!(neutralised(data), response)),
    serializeStream:
      harperCsv.serializeStream && ((data, response) => harperCsv.serializeStream!(neutralised(data), response)),
  });
}
