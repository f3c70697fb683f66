/**
 * The topic-name fix for what Harper sends (lib/mqtt/publish-packet.ts), on packets made and read by
 * mqtt-packet (the codec of mqtt.js and of Harper's broker): MQTT 3.1.1 and 5, QoS 0 and 1,
 * properties, and a remaining length that shrinks across a byte boundary.
 */
import { describe, expect, it } from 'vitest';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { publishTopic, publishedTopicName, withRetainFlag } from '../../lib/mqtt/publish-packet.js';

function parse(buffer: Buffer, protocolVersion: 4 | 5): Packet {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: Packet[] = [];
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', (error: Error) => {
    throw error;
  });
  parser.parse(buffer);
  expect(packets).toHaveLength(1);
  return packets[0];
}

const publish = (topic: string, payload: Buffer, extra: Partial<IPublishPacket> = {}): IPublishPacket =>
  ({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false, ...extra }) as IPublishPacket;

describe('publish packet topic names', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: removes the leading slash of a published topic and keeps everything else`, () => {
      const cases: IPublishPacket[] = [
        publish('/factory/line-1/status', Buffer.from('{"state":"running"}')),
        publish('/x', Buffer.alloc(0), { qos: 1, messageId: 42 }),
        // A remaining length of 128 (two length bytes) becomes 127 (one byte).
        publish('/a', Buffer.alloc(protocolVersion === 5 ? 123 : 124, 1)),
        publish('/ab', Buffer.alloc(300, 2), { qos: 1, messageId: 7, retain: true }),
        ...(protocolVersion === 5
          ? [
              publish('/with/properties', Buffer.from('p'), {
                qos: 1,
                messageId: 9,
                properties: { userProperties: { a: 'b' }, contentType: 'text/plain' },
              }),
            ]
          : []),
      ];
      for (const packet of cases) {
        const fixed = parse(
          publishedTopicName(mqttPacket.generate(packet, { protocolVersion })),
          protocolVersion,
        ) as IPublishPacket;
        expect(fixed.topic).toBe(packet.topic.slice(1));
        expect(Buffer.from(fixed.payload)).toEqual(packet.payload);
        expect({
          qos: fixed.qos,
          retain: fixed.retain,
          messageId: fixed.messageId,
          properties: fixed.properties,
        }).toEqual({
          qos: packet.qos,
          retain: packet.retain,
          messageId: packet.qos > 0 ? packet.messageId : undefined,
          properties: packet.properties,
        });
      }
    });
  }

  it('leaves topics without a leading slash, other packets and partial buffers untouched', () => {
    const untouched = [
      mqttPacket.generate(publish('sensors/101', Buffer.from('{}')), { protocolVersion: 4 }),
      mqttPacket.generate({ cmd: 'puback', messageId: 3 }, { protocolVersion: 4 }),
      mqttPacket.generate({ cmd: 'pingresp' }, { protocolVersion: 4 }),
      mqttPacket.generate(publish('/x/y', Buffer.from('abc')), { protocolVersion: 4 }).subarray(0, 6),
    ];
    for (const buffer of untouched) expect(publishedTopicName(buffer)).toBe(buffer);
  });

  it('reads the topic of a PUBLISH and sets its RETAIN flag, leaving the rest as it was', () => {
    for (const protocolVersion of [4, 5] as const) {
      const packet = publish('sensors/site-a/101', Buffer.alloc(200, 3), { qos: 1, messageId: 11 });
      const bytes = mqttPacket.generate(packet, { protocolVersion });
      expect(publishTopic(bytes)).toBe('sensors/site-a/101');
      const retained = parse(withRetainFlag(bytes), protocolVersion) as IPublishPacket;
      expect({
        topic: retained.topic,
        retain: retained.retain,
        qos: retained.qos,
        messageId: retained.messageId,
      }).toEqual({ topic: 'sensors/site-a/101', retain: true, qos: 1, messageId: 11 });
      expect(Buffer.from(retained.payload)).toEqual(packet.payload);
    }
    expect(publishTopic(mqttPacket.generate({ cmd: 'pingresp' }, { protocolVersion: 4 }))).toBeUndefined();
  });
});
