"""What the phases of ``benchmarks.live_faults`` share: the house, its topics, a wire tap, settings, helpers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from hardware.config import TopicsConfig
from hardware.faultlab.devices import SimSettings
from hardware.wire.local_broker import LocalBroker
from twin.config import reference_house

HOUSE = reference_house()
TOPICS = TopicsConfig().topic_map(HOUSE.room_names)
MAX_COMMAND_AGE_S = 2.0


class Wire:
    """An independent subscriber: every command that crossed the broker."""

    def __init__(self, broker: LocalBroker, user: str = "", password: str | None = None) -> None:
        self.commands: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="wire", protocol=paho.MQTTv5)
        if user:
            client.username_pw_set(user, password)
        client.reconnect_delay_set(1, 2)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in TOPICS.command_topics()])
        client.on_message = self._on_message
        client.connect(broker.host, broker.port, keepalive=5)
        client.loop_start()
        self.client = client

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.commands.append((msg.topic, msg.payload))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def lab_settings(keepalive_s: int) -> dict:
    """The product's defaults for the link (heartbeat 1 s, fresh 2.5 s, lost after 5 s), the lab's for the rest."""
    return {"failsafe": {"heartbeat_s": 1.0, "fresh_link_s": 2.5, "link_timeout_s": min(5.0, 2 * keepalive_s + 1),
                         "reconnect_min_s": 0.2, "reconnect_max_s": 1.0}}


def sim_settings(**changes) -> SimSettings:
    return SimSettings(**{"heartbeat_timeout_s": 3.0, "max_command_age_s": MAX_COMMAND_AGE_S, **changes})


# --- helpers --------------------------------------------------------------------------------------------

def mqtt_client(broker: LocalBroker, user: str | None, password: str | None, protocol: int,
                reconnect: bool = False, keepalive_s: int = 5) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=protocol, reconnect_on_failure=reconnect)
    if user is not None:
        client.username_pw_set(user, password)
    client.reconnect_delay_set(1, 1)
    client.connect(broker.host, broker.port, keepalive=keepalive_s)
    client.loop_start()
    time.sleep(0.2)
    return client


def _iso(wall: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(wall, UTC).isoformat()


def _wait(condition, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    return None


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
