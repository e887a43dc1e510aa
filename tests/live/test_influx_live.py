"""A live run against the emulator writes its results to a real InfluxDB through the runner's observer hook."""

from __future__ import annotations

import dataclasses
import threading
import tomllib

import pytest

from hardware.config import BrokerConfig, live_config_from_dict
from hardware.emulator.emulated_house import HouseEmulator, scenario_window
from hardware.live.parity import live_config_text
from hardware.live.runner import LiveRun, LiveRunOptions
from hardware.outputs.config import InfluxOutputConfig, OutputsConfig
from hardware.wire.local_broker import LocalBroker, mosquitto_path
from twin.config import reference_house
from twin.registry import load_scenario
from twin.safety import RolloutMode

pytestmark = [pytest.mark.timeout(300), pytest.mark.skipif(mosquitto_path() is None, reason="no mosquitto")]
SCENARIO = "winter-week-v1"


def test_emulated_live_run_writes_every_decision_to_influxdb(influxdb, tmp_path):
    influxdb.create_database("live")
    house = reference_house()
    speed, hours = 1200.0, 0.5
    with LocalBroker() as broker:
        config = live_config_from_dict(tomllib.loads(live_config_text(broker, SCENARIO, speed)))
        config = dataclasses.replace(config, outputs=OutputsConfig(influxdb=InfluxOutputConfig(
            url=influxdb.url, database="live", measurement_prefix="house_")))
        world = scenario_window(load_scenario(SCENARIO), "2024-01-15T06:00", hours)
        emulator = HouseEmulator(house, world, BrokerConfig(host=broker.host, port=broker.port),
                                 config.topics.topic_map(house.room_names), speed=speed, start_delay_s=1.0)
        thread = threading.Thread(target=lambda: emulator.run(linger_s=0.5), daemon=True)
        thread.start()
        try:
            options = LiveRunOptions("rule-based", RolloutMode.FULL, tmp_path / "run", house=house, plots=False)
            result = LiveRun(config, options).run()
        finally:
            thread.join(timeout=30)
    n = len(result.log)
    assert n >= 5
    body = influxdb.query('SELECT count("outdoor_temp_c") FROM "house_reading" WHERE "source" = \'live\'', "live")
    assert body["results"][0]["series"][0]["values"][0][1] == n
    body = influxdb.query('SELECT count("temp_c") FROM "house_room"', "live")
    assert body["results"][0]["series"][0]["values"][0][1] == n * len(house.rooms)
    body = influxdb.query('SELECT count("cost") FROM "house_energy"', "live")
    assert body["results"][0]["series"][0]["values"][0][1] == n
    assert not (tmp_path / "run" / "influx-spool" / "points.lp").stat().st_size  # everything was sent
