/**
 * The one edit we make to MQTT packets Harper sends: the leading "/" of a PUBLISH topic name
 * (why: lib/mqtt-topic-names.ts). Pure, so it is unit-tested on its own.
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
  const header = Buffer.from([packet[0], ...remainingLength(length - 1), (topicLength - 1) >> 8, (topicLength - 1) & 0xff]);
  return Buffer.concat([header, packet.subarray(at + 3)]);
}

