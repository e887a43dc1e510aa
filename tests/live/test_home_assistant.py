"""Home Assistant discovery with the real Mosquitto and the shipped ACL: entities appear, a mode change
round-trips, a forbidden user's change does nothing, a restarted HA gets the configs again."""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from hardware.config import BrokerConfig
from hardware.outputs.home_assistant import HomeAssistantBridge
from hardware.outputs.mode_gate import ModeGate
from hardware.wire.local_broker import LocalBroker, mosquitto_path
from twin.safety import RolloutMode

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(mosquitto_path() is None or shutil.which("mosquitto_passwd") is None,
                                 reason="mosquitto and mosquitto_passwd are needed")]

ACL = Path(__file__).parents[2] / "hardware" / "examples" / "mosquitto" / "pems.acl"
PASSWORDS = {"pems": "controller secret", "homeassistant": "ha secret", "viewer": "look only"}


@contextlib.contextmanager
def secured_broker(passwords: dict[str, str], prefix: str = "pems-ha-"):
    """A Mosquitto with a password per user and the shipped ACL (what a real house runs)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    passwd = folder / "passwd"
    for k, (user, password) in enumerate(passwords.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if k == 0 else []), "-b", str(passwd), user, password],
                       check=True, capture_output=True)
    acl = folder / "acl"
    acl.write_text(ACL.read_text())
    for path in (passwd, acl):
        path.chmod(0o644)
    broker = LocalBroker(extra_config=f"password_file {passwd}\nacl_file {acl}", anonymous=False, folder=folder)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def secured():
    with secured_broker(PASSWORDS) as broker:
        yield broker


class Watcher:
    """A paho client as ``user``, collecting what arrives on ``topics``."""

    def __init__(self, broker: LocalBroker, user: str, topics: list[str]) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"watch-{user}-{time.monotonic_ns()}",
                                  protocol=paho.MQTTv5)
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, bool(m.retain)))
        subscribed = queue.Queue()
        self.client.on_subscribe = lambda *a: subscribed.put(True)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        subscribed.get(timeout=5)

    def wait_for(self, topic: str, timeout_s: float = 5.0, payload: bytes | None = None):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                got = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if got[0] == topic and (payload is None or got[1] == payload):
                return got
        return None

    def drain(self) -> list[tuple[str, bytes, bool]]:
        out = []
        while not self.messages.empty():
            out.append(self.messages.get())
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _bridge(broker: LocalBroker, gate: ModeGate) -> HomeAssistantBridge:
    config = BrokerConfig(host=broker.host, port=broker.port, username="pems", password_env="PEMS_HA_TEST_PW",
                          client_id="pems-ha-test")
    return HomeAssistantBridge(config, gate)


def test_entities_appear_mode_round_trips_and_a_forbidden_user_changes_nothing(secured, monkeypatch):
    monkeypatch.setenv("PEMS_HA_TEST_PW", PASSWORDS["pems"])
    applied = []
    gate = ModeGate(RolloutMode.ADVISORY, apply=applied.append)
    bridge = _bridge(secured, gate)
    bridge.start()
    try:
        # Wait until the configs have passed the broker (a subscriber that was already there gets them
        # live, with the retain flag cleared), then look as a freshly started Home Assistant would.
        early = Watcher(secured, "homeassistant", ["homeassistant/+/pems/+/config"])
        seen: set[str] = set()
        deadline = time.monotonic() + 5
        while len(seen) < 5 and time.monotonic() < deadline:
            seen |= {topic for topic, _, _ in early.drain()}
            time.sleep(0.05)
        early.close()
        ha = Watcher(secured, "homeassistant", ["homeassistant/#", "pems/#"])
        # retained configs, as a freshly started Home Assistant sees them
        configs = {}
        deadline = time.monotonic() + 5
        while len(configs) < 5 and time.monotonic() < deadline:
            for topic, payload, retained in ha.drain():
                if topic.endswith("/config"):
                    assert retained
                    configs[topic] = json.loads(payload)
            time.sleep(0.05)
        select = configs["homeassistant/select/pems/rollout_mode/config"]
        assert select["options"] == ["SIMULATION", "ADVISORY", "PARTIAL", "FULL"]
        assert select["availability_topic"] == "pems/status" and select["command_topic"] == "pems/mode/set"
        for name in ("plan_status", "plan_next_hours", "cost_today", "savings_today"):
            sensor = configs[f"homeassistant/sensor/pems/{name}/config"]
            assert sensor["expire_after"] > 0 and sensor["availability_topic"] == "pems/status"

        # a forbidden user (read-only viewer) asks for FULL: the ACL drops it, nothing changes
        intruder = Watcher(secured, "viewer", ["pems/mode"])
        intruder.client.publish("pems/mode/set", b"FULL", qos=1).wait_for_publish(5)
        time.sleep(1.0)
        assert gate.mode is RolloutMode.ADVISORY and applied == []

        # Home Assistant's select asks for PARTIAL: applied through the gate and echoed
        ha.drain()
        ha.client.publish("pems/mode/set", b"PARTIAL", qos=1).wait_for_publish(5)
        assert ha.wait_for("pems/mode", payload=b"PARTIAL") is not None
        assert gate.mode is RolloutMode.PARTIAL
        assert [(c.old, c.new, c.source) for c in applied] == [
            (RolloutMode.ADVISORY, RolloutMode.PARTIAL, "home-assistant")]

        # nonsense from HA is refused and the mode in force echoed back
        ha.client.publish("pems/mode/set", b"TURBO", qos=1).wait_for_publish(5)
        assert ha.wait_for("pems/mode", payload=b"PARTIAL") is not None
        assert gate.mode is RolloutMode.PARTIAL and gate.refused[-1][0] == "TURBO"

        # HA restarts and announces itself: the configs are published again
        before = bridge.announcements
        ha.client.publish("homeassistant/status", b"online", qos=1).wait_for_publish(5)
        assert ha.wait_for("homeassistant/select/pems/rollout_mode/config") is not None
        assert bridge.announcements == before + 1

        # states
        bridge.publish_plan("optimal", [{"start": "2024-01-15T10:00:00+01:00", "battery_kw": 1.5}])
        bridge.publish_money(3.2, savings=0.8, low=0.5, high=1.1, day="2024-01-14")
        assert ha.wait_for("pems/ha/plan_status", payload=b"optimal") is not None
        intruder.close()
    finally:
        bridge.link.abandon(with_will=True)  # the controller dies: HA must see it unavailable
    assert ha.wait_for("pems/status", payload=b"offline", timeout_s=15) is not None
    ha.close()


def test_sensors_follow_a_simulated_run(secured, monkeypatch):
    """The observer on the runner loop keeps plan status, next hours and today's cost on their topics."""
    from builders import simple_scenario, small_house

    from controllers.mpc.controller import MpcController
    from hardware.outputs.home_assistant import HomeAssistantObserver
    from twin.runner import RunSettings, simulate

    monkeypatch.setenv("PEMS_HA_TEST_PW", PASSWORDS["pems"])
    bridge = _bridge(secured, ModeGate(RolloutMode.ADVISORY))
    bridge.start()
    ha = Watcher(secured, "homeassistant", ["pems/ha/#"])
    try:
        house = small_house(n_rooms=1)
        scenario = simple_scenario(days=0.25, seed=4)
        controller = MpcController(house)
        result = simulate(house, scenario, controller, RunSettings(horizon_s=6 * 3600.0),
                          observers=(HomeAssistantObserver(bridge, controller=controller),))
        time.sleep(1.0)
        got = ha.drain()
    finally:
        bridge.stop()
        ha.close()
    costs = [float(p) for t, p, _ in got if t == "pems/ha/cost_today"]
    assert costs and costs[-1] == pytest.approx(result.log["cost"].sum(), abs=1e-3)
    plans = [json.loads(p) for t, p, _ in got if t == "pems/ha/plan"]
    assert plans and plans[-1]["hours"] and "battery_kw" in plans[-1]["hours"][0]
    statuses = {p.decode() for t, p, _ in got if t == "pems/ha/plan_status"}
    assert statuses <= {"optimal", "feasible", "last_plan", "fallback"} and statuses
