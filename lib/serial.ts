/**
 * One write at a time per sensor.
 *
 * Harper runs concurrent writes to one record in overlapping transactions, and under a burst
 * (a device publishing faster than each write commits) they do not commit in arrival order: the
 * record ended at an earlier reading than the last one sent, and each write's alert evaluation
 * read a state that the write before it had not yet committed (an alert fired twice). Queuing the
 * writes of one sensor, each starting its transaction only after the previous one committed,
 * keeps arrival order end to end. Writes to different sensors still run side by side.
 */
const queues = new Map<string, Promise<unknown>>();

export function serially<T>(key: string, task: () => Promise<T>): Promise<T> {
  const previous = queues.get(key);
  const result = previous ? previous.then(task, task) : task();
  const settled = result.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, settled);
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return result;
}

/** The record a REST/MQTT write targets, as a queue key (the id, or the path it comes from). */
export function writeKey(target: unknown): string {
  if (target === null || target === undefined) return '';
  if (typeof target !== 'object') return String(target);
  const { id, pathname, url } = target as { id?: unknown; pathname?: unknown; url?: unknown };
  return String(id ?? pathname ?? url ?? '');
}
