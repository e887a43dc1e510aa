"""The safety layer: whatever a controller asks, what reaches the plant stays inside the envelope."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.config import SafetyConfig, reference_house
from twin.contracts import BatteryCommand, BatteryMode, Command
from twin.house import SimHouse
from twin.registry import load_scenario
from twin.safety import RolloutMode, SafetyLayer, envelope_problems

HOUSE = reference_house()
SCENARIO = load_scenario("winter-week-v1")


@pytest.fixture(scope="module")
def obs():
    return SimHouse(HOUSE, SCENARIO).observe()


finite = st.floats(-1e6, 1e6, allow_nan=False)
battery_commands = st.one_of(
    st.none(),
    st.builds(BatteryCommand, st.sampled_from([BatteryMode.SELF_CONSUMPTION])),
    st.builds(BatteryCommand, st.sampled_from([BatteryMode.CHARGE_FROM_GRID, BatteryMode.DISCHARGE_TO_GRID]),
              st.floats(0, 1e6)),
    st.builds(BatteryCommand, st.just(BatteryMode.POWER_SETPOINT), finite),
    st.builds(BatteryCommand, st.just(BatteryMode.BACKUP_RESERVE), st.just(0.0), st.floats(0, 1)),
)
commands = st.builds(
    lambda lease, relays, battery, ev: (lease, relays, battery, ev),
    st.floats(1.0, 1e6), st.one_of(st.none(), st.lists(st.booleans(), min_size=16, max_size=16).map(tuple)),
    battery_commands, st.one_of(st.none(), finite),
)


@settings(max_examples=300, deadline=None)
@given(spec=commands, mode=st.sampled_from(list(RolloutMode)),
       stale=st.sets(st.sampled_from(["battery_soc", "grid_power_kw"])))
def test_every_command_leaves_inside_the_envelope(obs, spec, mode, stale):
    lease_s, relays, battery, ev = spec
    o = replace(obs, stale=frozenset(stale))
    command = Command(until=o.after(lease_s), relay_on=relays, battery=battery, ev_power_kw=ev)
    safe = SafetyLayer(HOUSE, mode=mode)(command, o)
    assert envelope_problems(safe, o, HOUSE, HOUSE.safety, mode) == []


def test_relay_minimum_times_and_switch_cap_hold_over_a_run():
    config = SafetyConfig(relay_min_on_s=600, relay_min_off_s=900, relay_max_switches_per_hour=3)
    layer = SafetyLayer(HOUSE, config)
    twin = SimHouse(HOUSE, SCENARIO)
    rng = np.random.default_rng(0)
    history = []
    for k in range(200):  # a controller that flips every relay at random every minute
        twin.advance_to(k * 60.0)
        o = twin.observe()
        history.append((o.time.timestamp(), o.relay_on.copy()))
        wanted = tuple(bool(x) for x in rng.integers(0, 2, 16))
        twin.apply(layer(Command(until=o.after(300), relay_on=wanted), o))
    times = np.array([t for t, _ in history])
    states = np.array([s for _, s in history])
    for j in range(16):
        changes = times[1:][states[1:, j] != states[:-1, j]]
        for a, b, state_after_a in zip(changes, changes[1:], states[1:][states[1:, j] != states[:-1, j]][:, j],
                                       strict=False):
            minimum = config.relay_min_on_s if state_after_a else config.relay_min_off_s
            assert b - a >= minimum - 1e-6, f"room {j}: held {b - a} s < {minimum} s"
        for t in changes:
            assert ((changes > t - 3600) & (changes <= t)).sum() <= config.relay_max_switches_per_hour


@pytest.mark.parametrize("mode", list(RolloutMode))
def test_rollout_modes_gate_devices(obs, mode):
    command = Command(until=obs.after(600), relay_on=(True,) * 16,
                      battery=BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, 3.0), ev_power_kw=5.0)
    safe = SafetyLayer(HOUSE, mode=mode)(command, obs)
    assert (safe.relay_on is not None) == (mode is RolloutMode.FULL)
    assert (safe.ev_power_kw is not None) == (mode is RolloutMode.FULL)
    assert (safe.battery is not None) == (mode in (RolloutMode.FULL, RolloutMode.PARTIAL))


def test_stale_inputs_make_commands_conservative(obs):
    o = replace(obs, stale=frozenset({"battery_soc", "grid_power_kw"}))
    command = Command(until=o.after(600), battery=BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, 5.0),
                      ev_power_kw=11.0)
    safe = SafetyLayer(HOUSE)(command, o)
    assert safe.battery.mode is BatteryMode.SELF_CONSUMPTION
    assert safe.ev_power_kw == pytest.approx(HOUSE.ev_charger.min_power_kw)


def test_clamps_and_lease_bound(obs):
    layer = SafetyLayer(HOUSE)
    safe = layer(Command(until=obs.time + timedelta(days=3), battery=BatteryCommand(BatteryMode.POWER_SETPOINT, -50.0),
                         ev_power_kw=2.0), obs)
    assert safe.battery.power_kw == -HOUSE.battery.max_discharge_kw
    assert safe.ev_power_kw == 0.0, "below the charger's minimum means stop"
    assert math.isclose(safe.until.timestamp() - obs.time.timestamp(), HOUSE.safety.max_lease_s)
    assert layer.interventions == 1
