"""``[outputs.home_assistant]`` in a live run against the emulated house, the real Mosquitto and the shipped ACL.

Home Assistant's ``select`` lowers the rollout mode FULL → ADVISORY mid-run: from the next decision no
device is commanded (counted per decision), the change is an event and echoed on ``pems/mode``; a
read-only user's request does nothing; the discovery configs are on the broker.
"""

from __future__ import annotations

import json
import shutil
import threading
import tomllib
from pathlib import Path

import pytest

from hardware.config import BrokerConfig, live_config_from_dict
from hardware.emulator.emulated_house import HouseEmulator, scenario_window
from hardware.live.parity import live_config_text
from hardware.live.runner import LiveRun, LiveRunOptions
from hardware.wire.local_broker import mosquitto_path
from tests.live.test_home_assistant import Watcher, secured_broker
from twin.config import reference_house
from twin.registry import load_scenario
from twin.safety import RolloutMode

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(mosquitto_path() is None or shutil.which("mosquitto_passwd") is None,
                                 reason="mosquitto and mosquitto_passwd are needed")]

ACL = Path(__file__).parents[2] / "hardware" / "examples" / "mosquitto" / "pems.acl"
PASSWORDS = {"pems": "controller secret", "homeassistant": "ha secret", "viewer": "look only",
             "emulator": "emulated devices"}
SCENARIO = "winter-week-v1"
SPEED = 600.0
SWITCH_AT = 4  # HA asks for ADVISORY after this many decisions
FORBIDDEN_AT = 2  # the viewer asks for SIMULATION after this many


@pytest.fixture
def secured():
    with secured_broker(PASSWORDS, "pems-halive-") as broker:
        yield broker


class Script:
    """An observer: counts the device commands published at each decision and plays HA and an intruder."""

    def __init__(self, ha: Watcher, viewer: Watcher) -> None:
        self.ha, self.viewer = ha, viewer
        self.plant = None
        self.per_decision: list[int] = []
        self._total = 0
        self.echoed = False
        self.seen: list[tuple[str, bytes, bool]] = []  # what HA received before the switch

    def on_decision(self, time, obs, command, info) -> None:
        total = sum(self.plant.published.values())
        self.per_decision.append(total - self._total)
        self._total = total
        n = len(self.per_decision)
        if n == FORBIDDEN_AT:  # the ACL drops it at the broker
            self.viewer.client.publish("pems/mode/set", b"SIMULATION", qos=1).wait_for_publish(5)
        if n == SWITCH_AT:
            self.seen += self.ha.drain()
            self.ha.client.publish("pems/mode/set", b"ADVISORY", qos=1).wait_for_publish(5)
            # the bridge echoes the gate's mode once it took the request: in force from the next decision
            self.echoed = self.ha.wait_for("pems/mode", timeout_s=5, payload=b"ADVISORY") is not None

    def on_end(self, status: str) -> None:
        """Nothing to close."""


def test_home_assistant_lowers_a_live_run_to_advisory_at_the_next_decision(secured, tmp_path, monkeypatch):
    monkeypatch.setenv("PEMS_TEST_PW", PASSWORDS["pems"])
    monkeypatch.setenv("PEMS_TEST_EMU_PW", PASSWORDS["emulator"])
    house = reference_house()
    data = tomllib.loads(live_config_text(secured, SCENARIO, SPEED))
    data["broker"].update(username="pems", password_env="PEMS_TEST_PW", client_id="pems-controller")
    data["outputs"] = {"home_assistant": {"prefix": "homeassistant", "hours_ahead": 3}}
    config = live_config_from_dict(data)
    world = scenario_window(load_scenario(SCENARIO), "2024-01-15T06:00", 1.5)
    emulator = HouseEmulator(house, world, BrokerConfig(host=secured.host, port=secured.port, username="emulator",
                                                        password_env="PEMS_TEST_EMU_PW", client_id="pems-emulator"),
                             config.topics.topic_map(house.room_names), speed=SPEED, start_delay_s=1.0)
    ha = Watcher(secured, "homeassistant", ["homeassistant/#", "pems/mode"])
    viewer = Watcher(secured, "viewer", ["pems/mode"])
    script = Script(ha, viewer)
    thread = threading.Thread(target=lambda: emulator.run(linger_s=0.5), daemon=True)
    thread.start()
    run = LiveRun(config, LiveRunOptions("rule-based", RolloutMode.FULL, tmp_path / "run", house=house, plots=False,
                                         observers=(script,)),
                  on_plant_ready=lambda plant: setattr(script, "plant", plant))
    try:
        run.run()
    finally:
        thread.join(timeout=30)
    configs = {topic: json.loads(payload) for topic, payload, _ in script.seen + ha.drain()
               if topic.endswith("/config")}
    ha.close()
    viewer.close()

    counts = script.per_decision
    print("device commands per decision:", counts)
    assert len(counts) > SWITCH_AT + 3
    assert all(c > 0 for c in counts[:SWITCH_AT]), counts  # FULL, the intruder's SIMULATION ignored
    assert script.echoed
    assert all(c == 0 for c in counts[SWITCH_AT:]), counts  # ADVISORY from the decision after the request
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    changes = [e for e in events if e["kind"] == "mode_change"]
    assert len(changes) == 1 and "FULL -> ADVISORY" in changes[0]["message"], changes
    assert "home-assistant" in changes[0]["message"]
    plans = [json.loads(line) for line in (tmp_path / "run" / "commands.jsonl").read_text().splitlines()]
    assert plans[-1]["advice"] is not None  # the plan is still published as advice
    meta = json.loads((tmp_path / "run" / "live.json").read_text())
    assert [(c["old"], c["new"], c["source"]) for c in meta["mode_changes"]] == [("full", "advisory", "home-assistant")]
    assert configs["homeassistant/select/pems/rollout_mode/config"]["command_topic"] == "pems/mode/set"
    assert {t.split("/")[3] for t in configs} >= {"rollout_mode", "plan_status", "plan_next_hours", "cost_today",
                                                  "savings_today"}


def test_a_live_run_across_midnight_writes_the_days_savings_to_home_assistant(broker, tmp_path):
    """A day of an emulated live run at high speed: at midnight its counterfactual savings reach HA's sensor."""
    speed = 2400.0
    house = reference_house()
    data = tomllib.loads(live_config_text(broker, SCENARIO, speed))
    data["outputs"] = {"home_assistant": {}}
    config = live_config_from_dict(data)
    world = scenario_window(load_scenario(SCENARIO), "2024-01-15T23:00", 25.5)
    emulator = HouseEmulator(house, world, BrokerConfig(host=broker.host, port=broker.port),
                             config.topics.topic_map(house.room_names), speed=speed, start_delay_s=1.0)
    thread = threading.Thread(target=lambda: emulator.run(linger_s=0.5), daemon=True)
    thread.start()
    run = LiveRun(config, LiveRunOptions("rule-based", RolloutMode.FULL, tmp_path / "run", house=house, plots=False))
    try:
        run.run()
    finally:
        thread.join(timeout=60)
    assert run.savings is not None and run.savings.failures == []
    [day] = run.savings.results
    print(f"savings of {day.day.date()}: {day.savings:.3f} (actual {day.actual_cost:.3f}, "
          f"baseline {day.counterfactual_cost:.3f}, band ±{day.band:.3f}, model RMSE {day.model_rmse_c:.3f} K)")
    assert str(day.day.date()) == "2024-01-16"
    # the rule-based controller against its own replay on the exact house: next to nothing saved
    assert abs(day.savings) <= 0.05 * day.actual_cost + 0.05
    assert day.band == day.band and day.band >= 0.0  # the model check saw every room (gaps filled)
    import paho.mqtt.subscribe as subscribe

    message = subscribe.simple("pems/ha/savings", hostname=broker.host, port=broker.port, retained=True)
    payload = json.loads(message.payload, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert payload["day"] == "2024-01-16" and abs(payload["savings"] - round(day.savings, 3)) < 1e-9
