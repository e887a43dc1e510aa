"""Running the live runner against an emulator in this process (faster than two subprocesses)."""

from __future__ import annotations

import threading
import time
import tomllib
from pathlib import Path

from hardware.config import BrokerConfig, live_config_from_dict
from hardware.emulator.emulated_house import HouseEmulator, scenario_window
from hardware.live.parity import live_config_text
from hardware.live.runner import LiveRun, LiveRunOptions
from hardware.wire.local_broker import LocalBroker
from twin.config import reference_house
from twin.registry import load_scenario
from twin.runner import RunResult
from twin.safety import RolloutMode

SCENARIO = "winter-week-v1"


def run_against_emulator(broker: LocalBroker, folder: Path, controller: str, mode: RolloutMode,
                         start: str = "2024-01-15T06:00", hours: float = 0.5,
                         speed: float = 1200.0) -> tuple[RunResult, HouseEmulator]:
    house = reference_house()
    config = live_config_from_dict(tomllib.loads(live_config_text(broker, SCENARIO, speed)))
    world = scenario_window(load_scenario(SCENARIO), start, hours)
    emulator = HouseEmulator(house, world, BrokerConfig(host=broker.host, port=broker.port),
                             config.topics.topic_map(house.room_names), speed=speed, start_delay_s=1.0)
    failure: list[BaseException] = []

    def play() -> None:
        try:
            emulator.run(linger_s=0.5)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    try:
        result = LiveRun(config, LiveRunOptions(controller, mode, folder / "run", house=house, plots=False)).run()
    finally:
        thread.join(timeout=30)
    if failure:
        raise failure[0]
    return result, emulator


def wait_for(condition, timeout_s: float, what: str) -> float:
    """Poll ``condition`` every 20 ms; fail the test naming ``what`` after ``timeout_s``; when it held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.monotonic()
