"""A real Mosquitto broker per test, on a free loopback port (never 1883), and helpers to watch it.

The whole folder is skipped, with the reason, when Debian's ``mosquitto`` is not installed.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest

from hardware.wire.local_broker import LocalBroker, mosquitto_path

if mosquitto_path() is None:
    pytest.skip("mosquitto is not installed (apt-get install mosquitto); live tests need a real broker",
                allow_module_level=True)


@pytest.fixture
def broker():
    with LocalBroker() as running:
        yield running


class Spy:
    """An independent subscriber to every topic: what actually went through the broker."""

    def __init__(self, broker: LocalBroker) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.expiry: dict[str, int | None] = {}  # topic → MQTT v5 message expiry of its last message
        self._lock = threading.Lock()
        self._ready = threading.Event()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="spy", protocol=paho.MQTTv5)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
        client.on_subscribe = lambda c, u, mid, rcs, p: self._ready.set()
        client.on_message = self._on_message
        client.connect(broker.host, broker.port, keepalive=5)
        client.loop_start()
        if not self._ready.wait(5):
            raise RuntimeError("spy could not subscribe")
        self.client = client

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self.expiry[msg.topic] = getattr(msg.properties, "MessageExpiryInterval", None)

    def retained(self, topic: str) -> list[bool]:
        with self._lock:
            return [r for t, p, r in self.messages if t == topic and p]

    def topics(self) -> set[str]:
        with self._lock:
            return {t for t, payload, _ in self.messages if payload}

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic and p]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def spy(broker):
    watcher = Spy(broker)
    yield watcher
    watcher.close()


def publisher(broker: LocalBroker, client_id: str = "rogue") -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.connect(broker.host, broker.port, keepalive=5)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    return client


# --- the fault-injection lab (hardware.faultlab) ------------------------------------------------------

@pytest.fixture
def lab_topics():
    from hardware.config import TopicsConfig
    from twin.config import reference_house

    return TopicsConfig().topic_map(reference_house().room_names)


@pytest.fixture
def make_sims(broker, lab_topics):
    """``make_sims(settings=None, **client)``: device simulators on the test broker, stopped afterwards."""
    from hardware.faultlab.devices import DeviceSims
    from twin.config import reference_house

    started = []

    def make(settings=None, **kwargs):
        sims = DeviceSims(reference_house(), lab_topics, broker.host, broker.port, settings, **kwargs).start()
        started.append(sims)
        return sims

    yield make
    for sims in started:
        sims.stop()


@pytest.fixture
def make_lab(broker, tmp_path):
    """``make_lab(extra=None, **kwargs)``: the live runner in a thread against the test broker (commissioning)."""
    from hardware.faultlab.harness import LabController, lab_config

    started = []

    def make(extra=None, controller_name="commissioning", state_file=None, start=True, running=True, **kwargs):
        config = lab_config(broker.host, broker.port, extra=extra,
                            state_file=state_file if state_file is not None else tmp_path / "state.json")
        lab = LabController(config, tmp_path / f"run{len(started)}", controller_name, **kwargs)
        started.append(lab)
        return lab.start(running=running) if start else lab

    yield make
    for lab in started:
        if lab.running:
            lab.stop()  # a failure of the run itself shows as a teardown error
