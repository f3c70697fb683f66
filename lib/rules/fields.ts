/**
 * The two refusals every table's rules share, written once so that a client sees the same body
 * for the same mistake whatever the table: a field the table does not let clients write
 * (`unknown_field`, naming the allowed ones), and an id in the body other than the one in the
 * topic or path (`id_mismatch`).
 */
import { Refusal } from './errors.js';

/**
 * Refuses the first key of `body` that is not in `writable`. Keys in `serverSet` are fields of the
 * stored record that the server writes, so the message says that rather than "unknown".
 */
export function checkKnownFields(
  body: Record<string, unknown>,
  writable: readonly string[],
  serverSet: readonly string[] = [],
): void {
  const field = Object.keys(body).find((key) => !writable.includes(key));
  if (field === undefined) return;
  const why = serverSet.includes(field) ? `${field} is set by the server` : `unknown field "${field}"`;
  throw new Refusal({
    error: 'unknown_field',
    field,
    allowed: writable,
    message: `${why}; allowed fields: ${writable.join(', ')}`,
  });
}

/** Refuses an id sent in the body that differs from the record's id (from the topic or path). */
export function checkBodyId(bodyId: unknown, id: string): void {
  if (String(bodyId) === id) return;
  throw new Refusal({
    error: 'id_mismatch',
    field: 'id',
    rule: 'equal to the id in the topic or path',
    message: `id in the body ("${String(bodyId)}") does not match the topic/path id ("${id}")`,
  });
}
