"""Conformance checks every registered controller and scenario is held to (like gymnasium's ``check_env``).

``check_scenario`` and ``check_controller`` raise :class:`ConformanceError` listing what is
wrong; the test suite runs them over the whole registry, so a new controller or scenario is
checked the moment it is registered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd

from twin.battery import commanded_power_kw
from twin.config import HouseConfig
from twin.contracts import FORECAST_FIELDS, BatteryCommand, Command, Controller, Observation
from twin.errors import TwinError
from twin.house import SimHouse
from twin.runner import RunSettings, simulate
from twin.scenario import Scenario, validate_data, validate_sessions


class ConformanceError(TwinError, AssertionError):
    """A controller or scenario breaks the contracts."""


def command_problems(command: object, obs: Observation, house: HouseConfig) -> list[str]:
    """Everything wrong with ``command`` as an answer to ``obs`` (empty when it conforms)."""
    if not isinstance(command, Command):
        return [f"decide() returned {type(command).__name__}, not a Command"]
    problems = []
    if not isinstance(command.until, datetime) or command.until.tzinfo is None:
        problems.append(f"until {command.until!r} is not timezone-aware")
    elif command.until <= obs.time:
        problems.append(f"until {command.until} is not after the observation time {obs.time}")
    if command.relay_on is not None:
        if len(command.relay_on) != len(house.rooms):
            problems.append(f"{len(command.relay_on)} relay states for {len(house.rooms)} rooms")
        if not all(isinstance(r, bool) for r in command.relay_on):
            problems.append("relay states must be Python bools")
    if command.battery is not None:
        b = house.battery
        if not isinstance(command.battery, BatteryCommand):
            problems.append(f"battery command {command.battery!r} is not a BatteryCommand")
        elif b is None:
            problems.append("battery command for a house without a battery")
        elif not -b.max_discharge_kw - 1e-9 <= commanded_power_kw(command.battery) <= b.max_charge_kw + 1e-9:
            problems.append(f"battery power {command.battery.power_kw} kW outside "
                            f"[-{b.max_discharge_kw}, {b.max_charge_kw}]")
    if command.ev_power_kw is not None:
        c = house.ev_charger
        if c is None:
            problems.append("EV command for a house without a charger")
        elif not (command.ev_power_kw == 0.0 or c.min_power_kw - 1e-9 <= command.ev_power_kw <= c.max_power_kw + 1e-9):
            problems.append(f"EV power {command.ev_power_kw} kW is neither 0 nor in "
                            f"[{c.min_power_kw:.2f}, {c.max_power_kw:.2f}]")
    return problems


class _Checked:
    """Wraps a controller and stops the run at the first non-conforming command."""

    def __init__(self, inner: Controller, house: HouseConfig) -> None:
        self.inner = inner
        self.house = house
        self.perfect_foresight = getattr(inner, "perfect_foresight", False)

    def reset(self) -> None:
        if hasattr(self.inner, "reset"):
            self.inner.reset()

    def decide(self, obs: Observation) -> Command:
        command = self.inner.decide(obs)
        problems = command_problems(command, obs, self.house)
        if problems:
            raise ConformanceError(f"non-conforming command at {obs.time.isoformat()}: {'; '.join(problems)}")
        return command


def check_controller(make: Callable[[], Controller], house: HouseConfig, scenario: Scenario,
                     settings: RunSettings | None = None) -> None:
    """Run a fresh controller twice on ``scenario``: commands must conform and runs must agree."""
    settings = settings or RunSettings()
    logs = []
    for _ in range(2):
        checked = _Checked(make(), house)
        if not isinstance(checked.inner, Controller):
            raise ConformanceError(f"{type(checked.inner).__name__} has no decide(obs) method")
        result = simulate(house, scenario, checked, settings)
        logs.append(result.log.drop(columns=["decide_time_s"]))
    try:
        pd.testing.assert_frame_equal(logs[0], logs[1])
    except AssertionError as exc:
        raise ConformanceError(f"same seed, different runs: {str(exc).splitlines()[0]}") from None


def check_scenario(scenario: Scenario, house: HouseConfig, horizon_steps: int = 192) -> None:
    """Data, sessions and issued forecasts of ``scenario`` must follow the contract."""
    validate_data(scenario.data, scenario.name)
    validate_sessions(scenario.ev_sessions, scenario.index, scenario.name)
    twin = SimHouse(house, scenario, horizon_s=horizon_steps * scenario.step_s)  # pad for the horizon checked
    actual = twin.exo.series
    pv = actual["pv_power_kw"]
    if (pv < 0).any() or (house.pv_arrays and (pv > house.pv_peak_kw * 1.2).any()):
        raise ConformanceError(f"{scenario.name}: PV power outside [0, 1.2 × peak]")
    n = twin.exo.n_steps
    for step in sorted({0, n // 2, n - 1}):
        first = scenario.forecasts.issue(actual, step, horizon_steps)
        again = scenario.forecasts.issue(actual, step, horizon_steps)
        missing = [k for k in FORECAST_FIELDS if k not in first]
        if missing:
            raise ConformanceError(f"{scenario.name}: forecast lacks {missing}")
        for key in FORECAST_FIELDS:
            values = np.asarray(first[key])
            if values.shape != (horizon_steps,):
                raise ConformanceError(f"{scenario.name}: forecast {key} has shape {values.shape}, "
                                       f"expected ({horizon_steps},)")
            if not np.isfinite(values).all():
                raise ConformanceError(f"{scenario.name}: forecast {key} at step {step} is not finite")
            if np.shares_memory(values, actual[key]):
                raise ConformanceError(f"{scenario.name}: forecast {key} is a view of the actual series")
            if not np.array_equal(values, again[key]):
                raise ConformanceError(f"{scenario.name}: forecast {key} at step {step} is not deterministic")
    if not math.isfinite(scenario.duration_s) or scenario.duration_s <= 0:
        raise ConformanceError(f"{scenario.name}: empty scenario")
