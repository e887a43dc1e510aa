"""The emulated devices' lease rules, and the twin's fallback when a controller leaves."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from hardware.emulator.devices import LeaseSlot, RelayBank, local_thermostat
from hardware.plant.clock import HouseClock
from hardware.wire.schemas import HeatingCommand
from twin.config import reference_house
from twin.contracts import BatteryCommand, BatteryMode, Command
from twin.house import SimHouse
from twin.registry import load_scenario

CET = timezone(timedelta(hours=1))
ORIGIN = datetime(2024, 1, 15, tzinfo=CET)
CLOCK = HouseClock(ORIGIN, time.time())


def command(seq: int, until_s: float, ttl_s: float, state: str = "on") -> HeatingCommand:
    return HeatingCommand(state=state, until=ORIGIN + timedelta(seconds=until_s), ttl_s=ttl_s, seq=seq)


def test_a_lease_ends_at_the_earlier_of_until_and_receipt_plus_ttl():
    slot = LeaseSlot()
    assert slot.offer(command(1, until_s=900, ttl_s=300), now_s=100.0, clock=CLOCK) is None
    assert slot.end_s == 400.0, "a device whose clock is off cannot be kept on longer than ttl_s"
    assert slot.offer(command(2, until_s=500, ttl_s=3600), now_s=100.0, clock=CLOCK) is None
    assert slot.end_s == 500.0
    assert slot.active(499.0) and not slot.active(500.0)


def test_old_sequence_numbers_and_expired_leases_are_refused():
    slot = LeaseSlot()
    assert slot.offer(command(10, 900, 900), 0.0, CLOCK) is None
    assert slot.offer(command(10, 900, 900), 1.0, CLOCK) == "old_seq", "a duplicate (QoS 1) takes effect once"
    assert slot.offer(command(9, 900, 900), 1.0, CLOCK) == "old_seq", "an older command never wins"
    assert slot.offer(command(11, 50, 900), 60.0, CLOCK) == "expired"
    assert slot.last_seq == 10


def test_relay_bank_keeps_one_lease_per_room():
    bank = RelayBank(3)
    bank.offer(0, command(1, 600, 600), 0.0, CLOCK)
    bank.offer(2, command(2, 300, 300, "off"), 0.0, CLOCK)
    assert bank.leased(100.0).tolist() == [True, False, True]
    assert bank.wanted.tolist() == [True, False, False]
    assert bank.next_end_s(100.0) == 300.0
    bank.release()
    assert not bank.leased(100.0).any()


def test_local_thermostat_is_the_twins_rule():
    house = reference_house()
    scenario = load_scenario("winter-week-v1")
    day = scenario.window(scenario.start, scenario.start + pd.Timedelta(hours=6))
    twin = SimHouse(house, day)
    switched = 0
    for t in np.arange(60.0, 6 * 3600.0, 60.0):  # no lease: the twin's own thermostat ticks every minute
        twin.advance_to(t - 1e-3)
        before = twin.observe()  # just before the tick (the air moves by ~1e-6 K in a millisecond)
        twin.advance_to(t)
        after = twin.observe()
        expected = local_thermostat(before.room_temp_c, after.comfort_lower_c, before.relay_on, house.thermostat)
        assert np.array_equal(after.relay_on, expected), t
        switched += int((after.relay_on != before.relay_on).sum())
    assert switched > 10, "the rule was exercised"


@pytest.fixture
def twin():
    house = reference_house()
    scenario = load_scenario("winter-week-v1")
    return SimHouse(house, scenario.window(scenario.start, scenario.start + pd.Timedelta(hours=6)))


def test_end_leases_hands_every_device_back_to_its_own_rule(twin):
    obs = twin.observe()
    twin.apply(Command(until=obs.after(5 * 3600), relay_on=(False,) * 16,
                       battery=BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, 4.0), ev_power_kw=0.0))
    twin.advance_to(600.0)
    assert twin.observe().battery_power_kw == -4.0
    twin.advance_to(3 * 3600.0)
    held = twin.observe()
    assert not held.relay_on.any()
    twin.end_leases()
    released = twin.observe()
    expected = local_thermostat(held.room_temp_c, held.comfort_lower_c, held.relay_on, twin.house.thermostat)
    assert np.array_equal(released.relay_on, expected) and released.relay_on.any(), "cold rooms heat again"
    assert twin.state.battery_cmd.mode is BatteryMode.SELF_CONSUMPTION
    assert twin.state.ev_request_kw is None, "the charger is back on its default"


def test_end_leases_can_release_one_device_only(twin):
    obs = twin.observe()
    battery = BatteryCommand(BatteryMode.CHARGE_FROM_GRID, 2.0)
    twin.apply(Command(until=obs.after(3600), relay_on=(False,) * 16, battery=battery, ev_power_kw=0.0))
    twin.end_leases(relays=True, battery=False, ev=False)
    assert twin.state.battery_cmd == battery and twin.state.ev_request_kw == 0.0


def test_next_power_change_is_when_the_battery_reaches_its_floor(twin):
    b = twin.house.battery
    obs = twin.observe()
    twin.apply(Command(until=obs.after(5 * 3600), relay_on=(False,) * 16, ev_power_kw=0.0,
                       battery=BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, 4.0)))
    # SOC falls at 4 kW / (η_d · capacity): from its start down to soc_min.
    expected_s = (obs.battery_soc - b.soc_min) * b.discharge_efficiency * b.capacity_kwh * 3600.0 / 4.0
    assert twin.next_power_change_s() == pytest.approx(expected_s, rel=1e-12)
    twin.advance_to(expected_s)
    assert twin.observe().battery_power_kw == 0.0 and twin.observe().battery_soc == pytest.approx(b.soc_min)
    assert twin.next_power_change_s() == float("inf")
