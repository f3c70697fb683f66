// A device as a process of its own, for tests that kill or freeze it: mqtt.js connects with the
// credentials and keepalive from the environment, prints "connected" once CONNACK arrives, and then
// only keeps its connection alive (mqtt.js sends PINGREQ by itself).
import mqtt from 'mqtt';

const { DEVICE_URL, DEVICE_USERNAME, DEVICE_PASSWORD, DEVICE_KEEPALIVE } = process.env;
const client = mqtt.connect(DEVICE_URL, {
  username: DEVICE_USERNAME,
  password: DEVICE_PASSWORD,
  clientId: `${DEVICE_USERNAME}.child-${process.pid}`,
  keepalive: Number(DEVICE_KEEPALIVE ?? 60),
  reconnectPeriod: 0,
  protocolVersion: 5,
});
client.on('connect', () => process.stdout.write('connected\n'));
client.on('error', (error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
