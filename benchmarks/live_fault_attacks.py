"""Phases 3 and 4 of ``benchmarks.live_faults``: intruders on a secured broker, and the canaries."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho

from benchmarks.live_faults_lab import (
    HOUSE,
    MAX_COMMAND_AGE_S,
    TOPICS,
    _iso,
    _wait,
    mqtt_client,
    sim_settings,
)
from hardware.failsafe.outbox import Published
from hardware.faultlab.devices import DeviceSims
from hardware.faultlab.metrics import (
    Outage,
    lost_while_connected,
    replayed_after_outage,
    stale_deliveries,
    switching_violations,
    unsafe_payloads,
)
from hardware.wire.local_broker import LocalBroker


def _client(broker: LocalBroker, user: str | None, protocol: int, reconnect: bool = False,
            keepalive_s: int = 5) -> paho.Client:
    return mqtt_client(broker, user, USERS.get(user) if user else None, protocol, reconnect, keepalive_s)


# --- phase 3: intruders ------------------------------------------------------------------------------

ACL = Path(__file__).parents[1] / "hardware" / "examples" / "mosquitto" / "pems.acl"
USERS = {"pems": "p1", "sims": "p2", "intruder": "p3", "viewer": "p4"}
EXTRA_ACL = ("\nuser sims\ntopic read loxone/heating/+/set\ntopic read growatt/battery/set_mode\n"
             "topic read ev/charger/set\ntopic write loxone/#\ntopic write growatt/#\ntopic write ev/#\n"
             "topic read pems/#\n\nuser intruder\ntopic read loxone/heating/+/status\n")


def intruders(rounds: int) -> dict:
    if shutil.which("mosquitto_passwd") is None:
        return {"skipped": "mosquitto_passwd is not installed"}
    folder = Path(tempfile.mkdtemp(prefix="pems-faults-acl-"))
    folder.chmod(0o755)
    passwd, acl = folder / "passwd", folder / "acl"
    for k, (user, password) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if k == 0 else []), "-b", str(passwd), user, password],
                       check=True, capture_output=True)
    acl.write_text(ACL.read_text() + EXTRA_ACL)
    passwd.chmod(0o644)
    acl.chmod(0o644)
    try:
        with LocalBroker(extra_config=f"password_file {passwd}\nacl_file {acl}", anonymous=False,
                         folder=folder) as broker:
            sims = DeviceSims(HOUSE, TOPICS, broker.host, broker.port, sim_settings(), username="sims",
                              password=USERS["sims"]).start()
            attempts = 0
            for _ in range(rounds):
                for protocol in (paho.MQTTv311, paho.MQTTv5):
                    client = _client(broker, "intruder", protocol)
                    for topic in TOPICS.command_topics():
                        client.publish(topic, b'{"marker": "intruder", "seq": 1}', qos=1).wait_for_publish(3)
                        client.publish(topic, b'{"marker": "intruder", "seq": 2}', qos=1,
                                       retain=True).wait_for_publish(3)
                        attempts += 2
                    client.loop_stop()
                    client.disconnect()
            # Canary: the controller's own user, from another client, does get through.
            client = _client(broker, "pems", paho.MQTTv5)
            client.publish(TOPICS.topic("battery_set"), b'{"marker": "canary"}', qos=1).wait_for_publish(3)
            client.loop_stop()
            client.disconnect()
            time.sleep(0.5)
            sims.stop()
            unauthorized = sum(1 for d in sims.deliveries if b"intruder" in d.payload)
            canary = sum(1 for d in sims.deliveries if b"canary" in d.payload)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"attempts": attempts, "unauthorized_deliveries": unauthorized, "canary_authorised_deliveries": canary}


# --- phase 4: canaries -------------------------------------------------------------------------------

def canaries(folder: Path) -> dict:
    """The same metrics on faults made on purpose: each must be above zero."""
    with LocalBroker() as broker:
        sims = DeviceSims(HOUSE, TOPICS, broker.host, broker.port, sim_settings()).start()
        naive = _client(broker, None, paho.MQTTv5, reconnect=True)
        naive.reconnect_delay_set(3, 3)  # back after the devices (which reconnect within 1-2 s) are
        topic = TOPICS.topic("heating_set", 0)
        now = time.time()
        time.sleep(0.3)
        broker.freeze()  # a naive client (paho's defaults) publishes into a frozen broker, which crashes
        issued = time.time()
        payload = json.dumps({"state": "on", "until": _iso(issued + 60), "ttl_s": 60, "seq": 10**15,
                              "ts": _iso(issued)}).encode()
        naive.publish(topic, payload, qos=1)
        time.sleep(0.5)
        broker.kill()
        fault = time.time()
        time.sleep(0.5)
        broker.start()
        back = time.time()
        _wait(lambda: [d for d in sims.deliveries if d.seq == 10**15], 15)
        replayed = replayed_after_outage(sims.deliveries, [Outage("kill", fault, back)])
        lost = lost_while_connected([Published(0.0, now, "heating.x", topic, 42)], sims.deliveries)
        # A command held up 2.5 s in a frozen broker (a client with a long keepalive keeps its connection):
        # it arrives stale. The lab's devices refuse it; a device without an age check takes it.
        careless = DeviceSims(HOUSE, TOPICS, broker.host, broker.port,
                              sim_settings(max_command_age_s=float("inf"), heartbeat_timeout_s=float("inf")),
                              client_id="careless-sims").start()
        slow = _client(broker, None, paho.MQTTv5, keepalive_s=60)
        time.sleep(0.3)
        broker.freeze()
        held = json.dumps({"state": "on", "until": _iso(time.time() + 60), "ttl_s": 60, "seq": 10**15 + 100,
                           "ts": _iso(time.time())})
        slow.publish(topic, held, qos=1)
        time.sleep(2.5)
        broker.thaw()
        _wait(lambda: [d for d in careless.deliveries if d.seq == 10**15 + 100], 5)
        stale_careless = stale_deliveries(careless.deliveries, MAX_COMMAND_AGE_S)
        stale_lab = stale_deliveries(sims.deliveries, MAX_COMMAND_AGE_S)
        careless.stop()
        slow.loop_stop()
        slow.disconnect()
        flipped = time.monotonic()
        for k in range(6):  # a controller without a safety layer (but with heartbeats): the relay every 0.3 s
            beat = json.dumps({"ts": _iso(time.time()), "n": k, "session": "canary", "state": "running"})
            naive.publish(TOPICS.topic("heartbeat"), beat, qos=0)
            body = json.dumps({"state": "on" if k % 2 else "off", "until": _iso(time.time() + 60), "ttl_s": 60,
                               "seq": 10**15 + 1 + k, "ts": _iso(time.time())})
            naive.publish(topic, body, qos=1).wait_for_publish(3)
            time.sleep(0.3)
        naive.loop_stop()
        naive.disconnect()
        sims.stop()
        flips = [c for c in sims.changes if c.mono > flipped]
    wire_unsafe = unsafe_payloads([(TOPICS.topic("ev_set"), json.dumps(
        {"enabled": True, "current_a": 32.0, "until": _iso(time.time() + 60), "ttl_s": 60, "seq": 1}).encode())],
        HOUSE, TOPICS)
    return {"replayed_after_outage": replayed, "stale_arrived_and_refused": stale_lab[1],
            "stale_accepted_by_a_device_without_age_check": stale_careless[0], "unsafe_commands": len(wire_unsafe),
            "commands_lost": lost,
            "relay_switching_violations": sum(switching_violations(flips, HOUSE.safety).values())}
