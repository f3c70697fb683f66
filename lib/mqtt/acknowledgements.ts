import type { Socket } from 'node:net';

/** MQTT control packet type 4 in the first byte's high nibble: PUBACK. */
const PUBACK = 0x40;

/**
 * The acknowledgements a committed batch releases leave in one system call per connection. A
 * batch of writes (lib/write-path/group-commit.ts) settles all at once, and Harper writes each
 * PUBACK as its write settles: one `write` system call per acknowledgement, which made socket
 * writes the largest single cost of a stored MQTT publish. At the first PUBACK of a turn the
 * socket is corked, and it is uncorked once the turn's synchronous work and promise reactions are
 * done (`process.nextTick` runs after them), so nothing waits longer than the turn that produced
 * it. Other packets are not the reason to cork: Harper sends a subscriber one PUBLISH per turn of
 * the event loop, so corking for them would only add work to every delivery.
 * Returns what to call with each packet the server writes, before writing it
 * (lib/mqtt/deliveries.ts).
 */
export function acknowledgementCoalescer(socket: Pick<Socket, 'cork' | 'uncork' | 'destroyed'>) {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return (packet: Buffer): void => {
    if (corked || (packet[0] & 0xf0) !== PUBACK || socket.destroyed) return;
    corked = true;
    socket.cork();
    process.nextTick(uncork);
  };
}
