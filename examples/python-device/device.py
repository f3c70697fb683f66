#!/usr/bin/env python3
"""A device in Python: publishes sensor readings and acts as an LED sign, over MQTT (Eclipse Paho).

Readings go to sensors/<sensor> (retained, QoS 1: stored and kept in the history). As a sign it
speaks only the per-field topics led-sign/<sign>/<field>: it subscribes to them (their retained
values are what it should show, so after being offline it gets what changed meanwhile), shows
each value, and reports it by publishing it back there (a device's publish there is a report).

Credentials come from the environment, never the command line (where `ps` would show them):
DEVICE_USERNAME, DEVICE_PASSWORD. The device user is named like its sign and sensor, e.g.
`npm run users -- add kiosk-1 --role device`.

usage: device.py [--host H] [--port P] [--sensor ID] [--sign ID] [--readings N] [--interval S]
"""
import argparse
import json
import os
import random
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt

FIELDS = ("message", "brightness", "power", "color")


def parse_args():
    parser = argparse.ArgumentParser(description="Publishes readings and acts as an LED sign over MQTT.")
    parser.add_argument("--host", default=os.environ.get("DEVICE_HOST", "localhost"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVICE_PORT", "1883")))
    parser.add_argument("--sensor", help="sensor id (default: the device user name)")
    parser.add_argument("--sign", help="sign id (default: the device user name)")
    parser.add_argument("--readings", type=int, default=0, help="stop publishing after N readings (default: never)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between readings (default 2)")
    return parser.parse_args()


def make_client(client_id):
    # paho-mqtt 2 (PyPI) asks which callback signatures to use; 1.6 (Debian bookworm) has no such argument.
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id, protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


def main():
    args = parse_args()
    username = os.environ.get("DEVICE_USERNAME")
    password = os.environ.get("DEVICE_PASSWORD")
    if not username or not password:
        sys.exit("set DEVICE_USERNAME and DEVICE_PASSWORD")
    sensor = args.sensor or username
    sign = args.sign or username
    shown = {}
    stop = threading.Event()
    connected = threading.Event()

    # A device's client id must be its user name, or start with it and a dot.
    client = make_client(f"{username}.python")
    client.username_pw_set(username, password)

    def on_connect(client_, _userdata, _flags, reason_code, _properties=None):
        if reason_code != 0:
            print(f"connection refused: {reason_code}", flush=True)
            stop.set()
            return
        # Subscribed again on every (re)connection: the retained values bring the sign up to date.
        client_.subscribe([(f"led-sign/{sign}/{field}", 1) for field in FIELDS])
        print(f"connected to {args.host}:{args.port} as {username}; sign {sign}, sensor {sensor}", flush=True)
        connected.set()

    def on_message(client_, _userdata, message):
        field = message.topic.rsplit("/", 1)[-1]
        value = message.payload.decode("utf-8")
        if field not in FIELDS or shown.get(field) == value:
            return
        shown[field] = value
        print(f"sign {sign}: showing {field} {value!r}", flush=True)
        # What the sign now shows, reported on the same topic.
        client_.publish(message.topic, value, qos=1, retain=True)
        print(f"sign {sign}: reported {field} {value!r}", flush=True)

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not connected.wait(10):
        sys.exit("no connection")

    temperature = 20.0 + random.random() * 2
    sent = 0
    while not stop.is_set() and (args.readings == 0 or sent < args.readings):
        temperature += (21.0 - temperature) * 0.1 + (random.random() - 0.5) * 0.4
        reading = {"location": "python", "temperature": round(temperature, 2), "humidity": round(45 + random.random() * 5, 1), "time": int(time.time() * 1000)}
        info = client.publish(f"sensors/{sensor}", json.dumps(reading), qos=1, retain=True)
        info.wait_for_publish(10)
        sent += 1
        print(f"sensors/{sensor}: {reading['temperature']} °C (reading {sent})", flush=True)
        stop.wait(args.interval)
    if args.readings:
        print(f"sent {sent} readings; still a sign until stopped", flush=True)
    stop.wait()
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main()
