"""SimHouse invariants (hypothesis), lease fallback, snapshots, DST, the run log."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from builders import simple_scenario, small_house
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.rule_based import RuleBasedController
from twin.contracts import BatteryCommand, BatteryMode, Command
from twin.house import SimHouse
from twin.runner import RunSettings, simulate

battery_commands = st.one_of(
    st.none(),
    st.builds(BatteryCommand, st.sampled_from([BatteryMode.SELF_CONSUMPTION])),
    st.builds(BatteryCommand, st.sampled_from([BatteryMode.CHARGE_FROM_GRID, BatteryMode.DISCHARGE_TO_GRID]),
              st.floats(0.0, 20.0)),
    st.builds(BatteryCommand, st.just(BatteryMode.POWER_SETPOINT), st.floats(-20.0, 20.0)),
    st.builds(BatteryCommand, st.just(BatteryMode.BACKUP_RESERVE), st.just(0.0), st.floats(0.0, 1.0)),
)


class RecordingHouse(SimHouse):
    """Remembers the time of every event it processes."""

    def _process_events(self, t: float) -> None:
        self.__dict__.setdefault("event_times", []).append(t)
        super()._process_events(t)


def residual_kwh(m) -> float:
    return (m.pv_kwh + m.import_kwh + m.battery_discharge_kwh - m.base_load_kwh - m.heating_kwh - m.ev_kwh
            - m.battery_charge_kwh - m.export_kwh)


@settings(max_examples=60, deadline=None)
@given(
    n_rooms=st.integers(0, 4),
    two_node=st.booleans(),
    has_battery=st.booleans(),
    pv_kw=st.sampled_from([0.0, 3.0, 12.0]),
    seed=st.integers(0, 1000),
    negative_export=st.booleans(),
    steps=st.lists(st.tuples(st.floats(1.0, 5400.0), st.lists(st.booleans(), min_size=4, max_size=4),
                             battery_commands, st.one_of(st.none(), st.floats(0.0, 15.0)), st.floats(10.0, 7200.0)),
                   min_size=1, max_size=25),
)
def test_energy_balance_soc_window_and_event_order(n_rooms, two_node, has_battery, pv_kw, seed, negative_export,
                                                    steps):
    house = small_house(n_rooms=n_rooms, battery=has_battery, pv_kw=pv_kw, two_node=two_node)
    scenario = simple_scenario(days=1.5, seed=seed, negative_export=negative_export)
    twin = RecordingHouse(house, scenario)
    t = 0.0
    for wait_s, relays, battery, ev_kw, lease_s in steps:
        command = Command(until=twin.timestamp(t + lease_s), relay_on=tuple(relays[:n_rooms]), battery=battery,
                          ev_power_kw=ev_kw)
        twin.apply(command)
        t = min(t + wait_s, twin.duration_s)
        twin.advance_to(t)
        record = twin.take_interval()
        assert abs(residual_kwh(record.meter)) <= 1e-9
        assert np.isfinite(twin.node_temps_c()).all()
        if has_battery:
            b = house.battery
            assert b.soc_min - 1e-9 <= twin.state.battery_soc <= b.soc_max + 1e-9
        assert record.meter.import_kwh >= 0 and record.meter.export_kwh >= 0
        assert abs(record.meter.heating_room_kwh.sum() - record.meter.heating_kwh) <= 1e-9
        if t >= twin.duration_s:
            break
    times = twin.event_times
    assert all(b >= a for a, b in zip(times, times[1:], strict=False)), "an event was processed in the past"


def test_relays_fall_back_to_the_local_thermostat_when_the_lease_ends(house):
    scenario = simple_scenario(days=1, outdoor_c=-10.0)
    twin = SimHouse(house, scenario)
    twin.apply(Command(until=twin.timestamp(3600), relay_on=(False, False)))  # a controller that stops heating
    twin.advance_to(3599)
    assert not twin.observe().relay_on.any()
    twin.advance_to(6 * 3600)  # the thermostat has been in charge for five hours of frost
    obs = twin.observe()
    lower = obs.comfort_lower_c
    assert (obs.room_temp_c > lower).all(), "the local thermostat keeps rooms above the band"
    assert (obs.room_temp_c < lower + 2.0).all()


def test_snapshot_restore_gives_an_identical_future(house):
    scenario = simple_scenario(days=2, seed=3)
    twin = SimHouse(house, scenario)
    controller = RuleBasedController(house)
    twin.advance_to(7 * 3600)
    snap = twin.snapshot()

    def future() -> list:
        out = []
        for k in range(1, 40):
            twin.apply(controller.decide(twin.observe()))
            twin.advance_to(7 * 3600 + k * 300)
            record = twin.take_interval()
            out.append((record.meter.cost, tuple(record.room_temp_c), record.battery_soc, record.ev_soc))
        return out

    first = future()
    twin.restore(snap)
    assert future() == first


def test_scenario_across_both_dst_changes():
    house = small_house(n_rooms=2, two_node=True)  # default comfort: night band lower 18 °C
    for start, local_hours in (("2024-03-30", 47), ("2024-10-26", 49)):  # Europe/Prague DST in 2024
        scenario = simple_scenario(start=start, days=(local_hours + 1) / 24, name=f"dst-{start}")
        result = simulate(house, scenario, RuleBasedController(house), RunSettings(decision_interval_s=300))
        log = result.log
        assert len(log) == scenario.duration_s / 300
        assert log.index.is_monotonic_increasing and log.index.tz is not None
        assert (np.diff(log.index.as_unit("s").asi8) == 300).all(), "absolute time advances evenly through DST"
        day = log.index[log.index.normalize() == pd.Timestamp(start, tz="Europe/Prague") + pd.Timedelta(days=1)]
        expected_hours = 23 if start.startswith("2024-03") else 25
        assert len(day) == expected_hours * 12
        night = log["comfort_lower_c.r0"] == 18.0  # builders: night band from 22:00 to 06:00 local
        hours = log.index.hour[night.to_numpy()]
        assert set(hours) == {22, 23, 0, 1, 2, 3, 4, 5}
        assert result.kpis["energy_balance_max_abs_kwh"] <= 1e-9


def test_run_log_schema_and_kpis_agree(house, scenario):
    result = simulate(house, scenario, RuleBasedController(house))
    log = result.log
    assert log.index.name == "time" and str(log.index.tz) == "Europe/Prague"
    for quantity in ("temp_c", "comfort_lower_c", "comfort_upper_c", "relay_on", "heating_kwh", "discomfort_kh",
                     "relay_switches"):
        assert [c for c in log.columns if c.startswith(quantity + ".")] == [f"{quantity}.r0", f"{quantity}.r1"]
    assert result.kpis["import_kwh"] == pytest.approx(log["import_kwh"].sum())
    assert result.kpis["cost"] == pytest.approx((log["import_kwh"] * log["import_price_per_kwh"]).sum()
                                                - (log["export_kwh"] * log["export_price_per_kwh"]).sum(), rel=1e-9)
    assert log["heating_kwh"].sum() == pytest.approx(log.filter(like="heating_kwh.").sum().sum())
    assert math.isfinite(result.kpis["decide_time_p95_s"])


def test_observe_builds_the_observation_the_dataclass_would(house):
    """``observation_of`` (the twin's fast path) sets every field as ``Observation(...)`` does."""
    from twin.contracts import Observation, observation_of

    twin = SimHouse(house, simple_scenario(days=1, seed=5))
    twin.advance_to(9 * 3600 + 123.5)
    obs = twin.observe()
    values = [getattr(obs, f.name) for f in dataclasses.fields(Observation)]
    built = Observation(*values)
    for f in dataclasses.fields(Observation):
        assert getattr(obs, f.name) is getattr(built, f.name), f.name
    assert obs.stale == frozenset() and obs.epoch_time == (obs.time, obs.time.timestamp())
    assert obs.epoch_s == obs.time.timestamp()
    assert obs.time == twin.timestamp(twin.t_s) and obs.outdoor_temp_c == twin._outdoor_c[twin._step_index(twin.t_s)]
    with pytest.raises(TypeError, match="takes all"):
        observation_of(*values[:-1])


def test_epoch_seconds_of_a_lease_end_is_its_timestamp_across_dst():
    """The lease end ``obs.after`` made is read back from a cache: it must equal ``timestamp()`` exactly."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from twin.contracts import epoch_seconds

    twin = SimHouse(small_house(), simple_scenario(days=1, seed=2))
    obs = twin.observe()
    zone = ZoneInfo("Europe/Berlin")
    # 2024-10-27 02:30 happens twice in Berlin; 2024-03-31 02:30 never.
    for start in (datetime(2024, 10, 27, 0, 0, tzinfo=zone), datetime(2024, 3, 31, 0, 30, tzinfo=zone)):
        for lease_s in (900.0, 5400.0, 7200.0, 12.5):
            o = dataclasses.replace(obs, time=start)
            until = o.after(lease_s)
            assert epoch_seconds(until) == until.timestamp() == start.timestamp() + lease_s
    assert epoch_seconds(obs.time) == obs.time.timestamp()
