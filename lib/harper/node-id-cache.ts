/**
 * Harper 4.7's answer to "which node wrote this?", remembered instead of read from disk per write.
 *
 * For every record it commits, Harper asks `server.replication.getThisNodeId(auditStore)` twice:
 * once to order the write against the stored version, once to stamp the write's audit entry.
 * Each answer reads the node-name mapping record from the audit store and decodes it with
 * msgpack, and the answer is always the same: the mapping gives this node's name the id 0 (Harper
 * writes it so on the first call, and nothing renumbers it). Under max-rate load those reads and
 * decodes were about a tenth of the worker thread's time for this component, which commits two
 * records per message (bench/README.md, design 27).
 *
 * So each answer is remembered per audit store, for the node name it was given under
 * (`server.hostname`, which Harper recomputes if its replication settings change). The first call
 * per store still goes to Harper, with whatever it writes. Harper assigns `server.replication`
 * when its replication module loads, which may be before or after this module: both are covered.
 */
type NodeIdOf = (auditStore: object) => number | undefined;

interface Replication {
  getThisNodeId?: NodeIdOf;
  [key: string]: unknown;
}

interface HarperServer {
  replication?: Replication;
  hostname?: string;
}

const REMEMBERING = Symbol('remembers this node id');

/** `getThisNodeId` answering from memory after the first call per audit store and node name. */
export function rememberingNodeId(original: NodeIdOf, nameNow: () => string | undefined): NodeIdOf {
  const known = new WeakMap<object, { name: string | undefined; id: number }>();
  const remembering: NodeIdOf = (auditStore) => {
    const name = nameNow();
    const hit = known.get(auditStore);
    if (hit && hit.name === name) return hit.id;
    const id = original(auditStore);
    if (typeof id === 'number' && auditStore !== null && typeof auditStore === 'object')
      known.set(auditStore, { name, id });
    return id;
  };
  return Object.assign(remembering, { [REMEMBERING]: true });
}

function wrap(replication: Replication | undefined, target: HarperServer): void {
  const original = replication?.getThisNodeId;
  if (typeof original !== 'function' || (original as { [REMEMBERING]?: boolean })[REMEMBERING]) return;
  replication!.getThisNodeId = rememberingNodeId(original.bind(replication), () => target.hostname);
}

/** Installs the remembering `getThisNodeId` on `target` (Harper's `server`), now or when Harper sets it. */
export function rememberThisNodeId(target: HarperServer): void {
  if (target.replication) return wrap(target.replication, target);
  let current: Replication | undefined;
  Object.defineProperty(target, 'replication', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (value: Replication | undefined) => {
      current = value;
      wrap(value, target);
    },
  });
}
