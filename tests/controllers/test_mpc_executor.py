"""The relay executor: planned energy is delivered, and the relay rules are never broken."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from builders import small_house
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.mpc.executor import RelayExecutor
from twin.contracts import Command, Forecast, Observation
from twin.safety import SafetyLayer

T0 = datetime(2024, 1, 15, tzinfo=ZoneInfo("Europe/Prague"))
STEP_S = 300.0


def observation(when: datetime, relays: np.ndarray, temps: np.ndarray, lower: float = 20.0,
                upper: float = 24.0) -> Observation:
    n = len(relays)
    forecast = Forecast(when, 900.0, 1, load=dict, comfort=lambda: (np.zeros((1, n)), np.zeros((1, n))))
    return Observation(
        time=when, room_temp_c=temps, comfort_lower_c=np.full(n, lower), comfort_upper_c=np.full(n, upper),
        relay_on=relays, outdoor_temp_c=0.0, pv_power_kw=0.0, base_load_kw=0.5, grid_power_kw=0.0,
        battery_soc=0.5, battery_power_kw=0.0, ev_connected=False, ev_soc=float("nan"), ev_energy_needed_kwh=0.0,
        ev_departure=None, import_price_per_kwh=0.2, export_price_per_kwh=0.05, forecast=forecast)


def run(executor: RelayExecutor, planned_kw: np.ndarray, temps: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Drive the executor through the safety layer; the relays do what the layer lets through."""
    house = small_house(n_rooms=planned_kw.shape[1])
    layer = SafetyLayer(house)
    relays = np.zeros(planned_kw.shape[1], dtype=bool)
    temps = np.full(planned_kw.shape[1], 22.0) if temps is None else temps
    history = []
    for i, planned in enumerate(planned_kw):
        when = T0 + timedelta(seconds=i * STEP_S)
        obs = observation(when, relays.copy(), temps)
        wanted = executor.decide(obs, planned, STEP_S)
        safe = layer(Command(until=when + timedelta(seconds=900), relay_on=wanted), obs)
        relays = np.array(safe.relay_on, dtype=bool)
        history.append(relays)
    return np.array(history), layer.interventions


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), hold=st.integers(1, 12))
def test_the_safety_layer_never_has_to_intervene(seed, hold):
    """Random plans (changing every ``hold`` decisions): the executor keeps min on/off and the switch cap."""
    house = small_house(n_rooms=3)
    executor = RelayExecutor(house)
    rng = np.random.default_rng(seed)
    steps = 72
    levels = rng.uniform(0, 1, (steps // hold + 1, 3)).repeat(hold, axis=0)[:steps]
    planned = levels * executor.heater_kw
    _, interventions = run(executor, planned)
    assert interventions == 0


def test_planned_energy_is_delivered_over_time():
    house = small_house(n_rooms=3)
    executor = RelayExecutor(house)
    duty = np.array([0.2, 0.5, 0.85])
    steps = 96  # 8 h
    history, _ = run(executor, np.tile(duty * executor.heater_kw, (steps, 1)))
    delivered = history.mean(axis=0)
    slot = 1.0 / steps
    assert np.all(np.abs(delivered - duty) <= 3 * slot), f"delivered duty {delivered} for planned {duty}"
    switches = np.abs(np.diff(history.astype(int), axis=0)).sum(axis=0)
    assert (switches <= 6 * 8).all()


def test_comfort_guards_override_the_plan():
    house = small_house(n_rooms=2)
    executor = RelayExecutor(house, comfort_guard_c=0.1)
    cold_and_hot = np.array([20.05, 23.95])  # within the guard of the lower and of the upper bound
    obs = observation(T0, np.array([False, True]), cold_and_hot)
    relays = executor.decide(obs, np.array([0.0, 2.0]), STEP_S)  # the plan says: first off, second on
    assert relays == (True, False)
