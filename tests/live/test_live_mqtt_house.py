"""MqttHouse on its own against a real broker: readings in, Observation out; Command in, leases out."""

from __future__ import annotations

import json
import math
import time
import tomllib

import numpy as np
import pytest
import simpy
from conftest import publisher

from hardware.config import live_config_from_dict
from hardware.emulator.emulated_house import scenario_window
from hardware.live.parity import live_config_text
from hardware.plant.clock import HouseClock
from hardware.plant.forecasts import ScenarioForecasts
from hardware.plant.mqtt_house import MqttHouse
from hardware.wire.schemas import BatteryCommandPayload, ChargerCommand, HeatingCommand, parse_payload
from twin.config import reference_house
from twin.contracts import BatteryCommand, BatteryMode, Command
from twin.registry import load_scenario
from twin.safety import RolloutMode

HOUSE = reference_house()
BLIND = "guest"  # the room whose sensor stays silent


@pytest.fixture
def house(broker):
    window = scenario_window(load_scenario("winter-week-v1"), "2024-01-15T06:00", 2.0)
    config = live_config_from_dict(tomllib.loads(live_config_text(broker, window.name, 1.0, sample_wait_s=0.0)))
    clock = HouseClock(window.start.to_pydatetime(), time.time(), 1.0)
    env = simpy.Environment(initial_time=0.0)
    forecasts = ScenarioForecasts(HOUSE, window, 48 * 3600.0)
    plant = MqttHouse(HOUSE, config, clock, env, forecasts, RolloutMode.FULL)
    plant.connect()
    yield plant
    plant.close()


def publish_readings(client, clock: HouseClock, counters_kwh: float, relay_on: bool, car: bool = True) -> None:
    ts = clock.timestamp(clock.now_s()).isoformat()
    messages = {f"loxone/room/{room}/temperature": {"temp_c": 20.0 + j / 10} for j, room in enumerate(HOUSE.room_names)
                if room != BLIND}
    messages.update({f"loxone/heating/{room}/status": {"state": "on" if relay_on else "off", "energy_kwh": counters_kwh,
                                                       "switches": 0} for room in HOUSE.room_names})
    messages.update({
        "loxone/outdoor/temperature": {"temp_c": -3.5},
        "growatt/battery/status": {"soc": 0.55, "power_kw": -1.2, "charge_kwh": counters_kwh,
                                   "discharge_kwh": 2 * counters_kwh},
        "growatt/pv/status": {"power_kw": 0.4, "energy_kwh": counters_kwh},
        "growatt/grid/status": {"power_kw": 5.0, "import_kwh": 10 * counters_kwh, "export_kwh": 0.0},
        "ev/charger/status": {"connected": True, "power_kw": 4.14, "energy_kwh": 3 * counters_kwh},
        "ev/car/status": {"soc": 0.6, "energy_needed_kwh": 12.0, "departure": "2024-01-15T07:12:00+01:00"},
    })
    if not car:
        del messages["ev/car/status"]
    for topic, payload in messages.items():
        client.publish(topic, json.dumps({**payload, "ts": ts}), qos=1).wait_for_publish(5)


def test_a_connected_car_is_waited_for_before_the_first_decision(house, broker):
    client = publisher(broker)
    publish_readings(client, house.clock, counters_kwh=1.0, relay_on=False, car=False)
    assert "ev/car/status" in house.wait_for_readings(0.5), "a car that wants nothing would be decided for"
    publish_readings(client, house.clock, counters_kwh=1.0, relay_on=False)
    assert "ev/car/status" not in house.wait_for_readings(1.0)


def test_readings_become_an_observation_and_commands_become_leases(house, spy, broker):
    client = publisher(broker)
    publish_readings(client, house.clock, counters_kwh=1.0, relay_on=False)
    missing = house.wait_for_readings(1.0)
    assert missing == [f"loxone/room/{BLIND}/temperature"]

    obs = house.observe()
    j = HOUSE.room_index(BLIND)
    assert math.isnan(obs.room_temp_c[j]) and f"room_temp_c.{BLIND}" in obs.stale
    others = np.delete(obs.room_temp_c, j)
    assert np.allclose(others, [20.0 + k / 10 for k in range(16) if k != j])
    assert (obs.battery_soc, obs.battery_power_kw, obs.grid_power_kw, obs.pv_power_kw) == (0.55, -1.2, 5.0, 0.4)
    assert obs.ev_connected and obs.ev_energy_needed_kwh == 12.0 and obs.ev_departure.hour == 7
    assert obs.base_load_kw == pytest.approx(5.0 + 0.4 + 1.2 - 0.0 - 4.14), "the balance of the meters"
    assert obs.outdoor_temp_c == -3.5 and obs.time == house.clock.timestamp(0.0)
    assert obs.forecast.horizon_steps == 192 and len(obs.forecast.import_price_per_kwh) == 192

    command = Command(until=obs.after(900), relay_on=(True,) * 16, ev_power_kw=HOUSE.ev_charger.max_power_kw,
                      battery=BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 2.5))
    house.apply(command)
    time.sleep(0.5)
    heating = [t for t in spy.topics() if t.endswith("/set") and t.startswith("loxone/heating/")]
    assert sorted(heating) == sorted(f"loxone/heating/{r}/set" for r in HOUSE.room_names if r != BLIND), \
        "a room without a temperature is left to its own thermostat"
    relay = parse_payload(HeatingCommand, spy.on("loxone/heating/living/set")[-1])
    assert relay.state == "on" and relay.ttl_s == pytest.approx(900.0) and relay.until == command.until
    battery = parse_payload(BatteryCommandPayload, spy.on("growatt/battery/set_mode")[-1])
    assert (battery.mode, battery.power_kw) == ("charge_from_grid", 2.5)
    charger = parse_payload(ChargerCommand, spy.on("ev/charger/set")[-1])
    assert charger.enabled and charger.current_a == pytest.approx(HOUSE.ev_charger.max_current_a)
    assert len({relay.seq, battery.seq, charger.seq}) == 3 and battery.seq > relay.seq
    for topic in ("loxone/heating/living/set", "growatt/battery/set_mode", "ev/charger/set"):
        assert spy.retained(topic) == [False], "commands are never retained"
        assert spy.expiry[topic] == 900, "MQTT v5 message expiry = the lease (speed 1)"

    # The interval is metered from counter differences.
    house.env.run(until=300.0)
    publish_readings(client, house.clock, counters_kwh=1.5, relay_on=True)
    time.sleep(0.3)
    record = house.take_interval()
    m = record.meter
    assert (m.import_kwh, m.pv_kwh, m.battery_charge_kwh, m.battery_discharge_kwh, m.ev_kwh) == (5.0, 0.5, 0.5, 1.0,
                                                                                                 1.5)
    assert m.heating_kwh == pytest.approx(16 * 0.5)
    assert m.relay_switches_room.tolist() == [0] * 16, "the switch counters did not move"
    assert record.relay_on.all() and record.battery_soc == 0.55
    client.loop_stop()
    client.disconnect()
