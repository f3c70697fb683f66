/**
 * PUBACKs of one turn leave together (lib/mqtt/acknowledgements.ts): the first corks the socket
 * until the turn's reactions are done; other packets never cork it.
 */
import { describe, expect, it } from 'vitest';
import { acknowledgementCoalescer } from '../../lib/mqtt/acknowledgements.js';

function fakeSocket() {
  const log: string[] = [];
  return { log, destroyed: false, cork: () => void log.push('cork'), uncork: () => void log.push('uncork') };
}

const puback = Buffer.from([0x40, 0x02, 0x00, 0x01]);
const publish = Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]);
const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

describe('acknowledgement coalescing', () => {
  it('corks once for the PUBACKs of one turn and uncorks after the turn', async () => {
    const socket = fakeSocket();
    const coalesce = acknowledgementCoalescer(socket);
    coalesce(puback);
    await Promise.resolve(); // a promise reaction of the same turn
    coalesce(puback);
    coalesce(puback);
    expect(socket.log).toEqual(['cork']);
    await nextTick();
    expect(socket.log).toEqual(['cork', 'uncork']);
    coalesce(puback); // a later turn corks again
    await nextTick();
    expect(socket.log).toEqual(['cork', 'uncork', 'cork', 'uncork']);
  });

  it('never corks for other packets, nor a destroyed socket', async () => {
    const socket = fakeSocket();
    const coalesce = acknowledgementCoalescer(socket);
    coalesce(publish);
    socket.destroyed = true;
    coalesce(puback);
    await nextTick();
    expect(socket.log).toEqual([]);
  });
});
