"""A standard MQTT client for the tests: Eclipse Paho (Debian's python3-paho-mqtt).

Subscribes to a filter with MQTT 3.1.1 or 5, then publishes the given messages (QoS 1, not
retained; an empty string is an empty payload) and prints one JSON line per message it receives:
{"topic", "payload", "retain"}. Exits after the last expected message or a timeout.

usage: paho_client.py <host> <port> <username> <password> <client-id> <3|5> <filter> <topic> <message>...
"""
import json
import sys
import threading

import paho.mqtt.client as mqtt

host, port, username, password, client_id, version, topic_filter, topic = sys.argv[1:9]
messages = sys.argv[9:]
protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
done = threading.Event()
received = []


def on_message(_client, _userdata, message):
    received.append(message)
    print(json.dumps({"topic": message.topic, "payload": message.payload.decode("utf-8"), "retain": bool(message.retain)}), flush=True)
    if len(received) >= len(messages):
        done.set()


subscribed = threading.Event()
client = mqtt.Client(client_id=client_id, protocol=protocol)
client.username_pw_set(username, password)
client.on_message = on_message
client.on_subscribe = lambda *args: subscribed.set()
client.connect(host, int(port))
client.loop_start()
client.subscribe(topic_filter, qos=1)
if not subscribed.wait(5):
    sys.exit("no SUBACK")
for payload in messages:
    client.publish(topic, payload.encode("utf-8") if payload else None, qos=1).wait_for_publish(5)
done.wait(10)
client.loop_stop()
client.disconnect()
sys.exit(0 if len(received) >= len(messages) else 1)
