"""SimHouse.reset_to: starting mid-scenario is the same as a house built on the scenario's window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import simple_scenario, small_house

from controllers.rule_based import RuleBasedController
from twin.contracts import BatteryCommand, BatteryMode
from twin.errors import TwinError
from twin.house import SimHouse
from twin.safety import SafetyLayer


def run(twin: SimHouse, start_s: float, steps: int, interval_s: float = 600.0) -> list[tuple]:
    """Rule-based decisions through the safety layer, with a battery schedule; one row per interval."""
    controller = RuleBasedController(twin.house)
    safety = SafetyLayer(twin.house)
    rows = []
    for k in range(steps):
        obs = twin.observe()
        command = controller.decide(obs)
        setpoint = (-2.0, 0.0, 2.0)[k % 3]
        command = safety(command.__class__(until=command.until, relay_on=command.relay_on,
                                           battery=BatteryCommand(BatteryMode.POWER_SETPOINT, setpoint),
                                           ev_power_kw=command.ev_power_kw), obs)
        twin.apply(command)
        twin.advance_to(start_s + (k + 1) * interval_s)
        r = twin.take_interval()
        rows.append((r.end_s - start_s, r.meter.cost, r.meter.import_kwh, r.meter.ev_kwh, r.meter.ev_unmet_kwh,
                     r.battery_soc, r.ev_connected, *r.room_temp_c, *r.relay_on))
    return rows


@pytest.mark.parametrize("start_hours", [0.0, 3.0, 20.25])  # 20:15 falls inside an EV session
def test_reset_to_matches_a_house_built_on_the_window(start_hours):
    house = small_house(n_rooms=3, two_node=True)
    full = simple_scenario(days=2, seed=11, outdoor_c=-3.0)
    start = full.start + pd.Timedelta(hours=start_hours)
    window = full.window(start, start + pd.Timedelta(hours=20))
    start_s = start_hours * 3600.0

    built = SimHouse(house, window)
    reused = SimHouse(house, full)
    reused.advance_to(1800.0)  # some history, which reset_to must forget
    reused.reset_to(start_s)

    assert reused.t_s == start_s
    assert reused.observe().time == built.observe().time
    assert reused.observe().ev_connected == built.observe().ev_connected
    expected = run(built, 0.0, 110)
    got = run(reused, start_s, 110)
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(expected, dtype=float), rtol=1e-9, atol=1e-9)


def test_a_car_at_home_at_the_start_is_connected_with_its_arrival_soc():
    house = small_house()
    full = simple_scenario(days=2)
    session = full.ev_sessions[1]  # 18:00 → 07:00 next day
    twin = SimHouse(house, full)
    twin.reset_to((session.arrival - full.start).total_seconds() + 2 * 3600.0)
    obs = twin.observe()
    assert obs.ev_connected and obs.ev_soc == pytest.approx(session.arrival_soc)
    assert obs.ev_departure == session.departure
    twin.reset_to((session.departure - full.start).total_seconds())  # it has just left
    assert not twin.observe().ev_connected


def test_reset_to_rejects_times_outside_the_scenario():
    twin = SimHouse(small_house(), simple_scenario(days=1))
    for bad in (-1.0, twin.duration_s, twin.duration_s + 900.0):
        with pytest.raises(TwinError, match="cannot start at"):
            twin.reset_to(bad)
