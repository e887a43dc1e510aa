"""pems live keeps the house's history ([history] directory) and refuses mpc-learned without enough of it."""

from __future__ import annotations

import threading
import tomllib

import pytest
from live_helpers import SCENARIO

from hardware.config import BrokerConfig, live_config_from_dict
from hardware.emulator.emulated_house import HouseEmulator, scenario_window
from hardware.live.learned import LiveHistoryError
from hardware.live.parity import live_config_text
from hardware.live.runner import LiveRun, LiveRunOptions
from scenarios.history.store import read_history
from twin.config import reference_house
from twin.registry import load_scenario
from twin.safety import RolloutMode


def _run(broker, tmp_path, controller: str, history: str, hours: float = 0.5):  # noqa: ANN001, ANN202
    house = reference_house()
    text = live_config_text(broker, SCENARIO, 1200.0) + history
    config = live_config_from_dict(tomllib.loads(text))
    world = scenario_window(load_scenario(SCENARIO), "2024-01-15T06:00", hours)
    emulator = HouseEmulator(house, world, BrokerConfig(host=broker.host, port=broker.port),
                             config.topics.topic_map(house.room_names), speed=1200.0, start_delay_s=1.0)
    thread = threading.Thread(target=lambda: emulator.run(linger_s=0.5), daemon=True)
    thread.start()
    try:
        options = LiveRunOptions(controller, RolloutMode.FULL, tmp_path / "run", house=house, plots=False)
        return LiveRun(config, options).run(), house
    finally:
        thread.join(timeout=30)


def test_the_live_run_keeps_its_readings_as_history(broker, tmp_path):
    result, house = _run(broker, tmp_path, "rule-based", f'\n[history]\ndirectory = "{tmp_path / "history"}"\n')
    history = read_history(tmp_path / "history", house.location.timezone)
    assert len(history) == len(result.log) > 0  # one row per decision, all flushed at the end
    for room in house.room_names:
        assert f"room_temp_c.{room}" in history
    assert history["battery_soc"].between(0, 1).all()


def test_mpc_learned_refuses_without_enough_history(broker, tmp_path):
    with pytest.raises(LiveHistoryError, match="set \\[history\\] directory"):
        _run(broker, tmp_path, "mpc-learned", "")
    with pytest.raises(LiveHistoryError, match="no history partitions"):
        _run(broker, tmp_path, "mpc-learned", f'\n[history]\ndirectory = "{tmp_path / "empty"}"\n')
