/**
 * The edits we make to the MQTT PUBLISH packets Harper sends (why: lib/mqtt/deliveries.ts): the
 * leading "/" of a topic name removed, the RETAIN flag set. Pure, so unit-tested on its own.
 */
const PUBLISH = 3;
const SLASH = 0x2f;

/** Encodes an MQTT "remaining length" (a variable byte integer, MQTT 3.1.1 §2.2.3). */
function remainingLength(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return bytes;
}

/**
 * The packet with the leading "/" of its topic removed when it is a PUBLISH whose topic has one;
 * any other packet (or anything that does not parse as one whole packet) is returned as it is.
 */
export function publishedTopicName(packet: Buffer): Buffer {
  if (packet.length < 5 || packet[0] >> 4 !== PUBLISH) return packet;
  let length = 0;
  let multiplier = 1;
  let at = 1;
  for (;;) {
    if (at > 4 || at >= packet.length) return packet;
    const byte = packet[at++];
    length += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) break;
  }
  if (at + length !== packet.length || length < 3) return packet;
  const topicLength = packet.readUInt16BE(at);
  if (topicLength < 2 || packet[at + 2] !== SLASH || at + 2 + topicLength > packet.length) return packet;
  const header = Buffer.from([
    packet[0],
    ...remainingLength(length - 1),
    (topicLength - 1) >> 8,
    (topicLength - 1) & 0xff,
  ]);
  return Buffer.concat([header, packet.subarray(at + 3)]);
}

/** The topic name of a whole PUBLISH packet, or undefined for any other packet. */
export function publishTopic(packet: Buffer): string | undefined {
  if (packet.length < 5 || packet[0] >> 4 !== PUBLISH) return undefined;
  let at = 1;
  while (at < 5 && at < packet.length && packet[at] & 0x80) at++;
  at++;
  if (at + 2 > packet.length) return undefined;
  const topicLength = packet.readUInt16BE(at);
  if (at + 2 + topicLength > packet.length) return undefined;
  return packet.toString('utf8', at + 2, at + 2 + topicLength);
}

/** The PUBLISH packet with its RETAIN flag (bit 0 of the first byte) set. */
export function withRetainFlag(packet: Buffer): Buffer {
  const copy = Buffer.from(packet);
  copy[0] |= 0x01;
  return copy;
}
