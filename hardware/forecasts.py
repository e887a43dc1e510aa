"""What the live house cannot measure: forecasts, current prices and the comfort schedule.

A :class:`ForecastSource` gives, for a house time, an :class:`Outlook`: the ``Forecast`` a
controller sees (same type and grid as in simulation), the comfort band now, today's prices
and an outdoor temperature to fall back on when the outdoor sensor is stale.
:class:`ScenarioForecasts` replays a scenario's *issued* forecasts on the house clock — against
the emulator (the same forecasts the simulated run sees) or to replay a recorded period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from hardware.errors import LiveError
from twin.config import HouseConfig
from twin.contracts import Forecast
from twin.exogenous import build_exogenous
from twin.scenario import Scenario
from twin.thermal import build_matrices


@dataclass(frozen=True, slots=True)
class Outlook:
    forecast: Forecast
    comfort_lower_c: np.ndarray  # per room, now [°C]
    comfort_upper_c: np.ndarray
    import_price_per_kwh: float  # now
    export_price_per_kwh: float
    outdoor_temp_c: float  # the source's value for now (used when the outdoor sensor is stale)


class ForecastSource(Protocol):
    """Forecasts on the house clock. ``end`` is when the source runs out (``None``: never)."""

    end: datetime | None

    def outlook(self, when: datetime) -> Outlook: ...


class ScenarioForecasts:
    """A scenario's issued forecasts, actual prices and comfort schedule, looked up by house time.

    Exactly what ``SimHouse.observe`` shows a controller for the same scenario, house and
    horizon, so a live run against the emulator sees the simulated run's forecasts.
    """

    def __init__(self, house: HouseConfig, scenario: Scenario, horizon_s: float) -> None:
        self.scenario = scenario
        self.step_s = scenario.step_s
        self.horizon_steps = max(1, math.ceil(horizon_s / self.step_s))
        thermal = build_matrices(house.rooms, house.couplings)
        self.exo = build_exogenous(house, scenario, self.horizon_steps + 1, thermal.mass_node, thermal.n_nodes)
        self.start = scenario.start.to_pydatetime()
        self.end = scenario.end.to_pydatetime()
        self._step_times = list(scenario.index.to_pydatetime())

    def step_index(self, when: datetime) -> int:
        offset_s = when.timestamp() - self.start.timestamp()
        i = int((offset_s + 1e-6) // self.step_s)
        if not 0 <= i < self.exo.n_steps:
            raise LiveError(f"house time {when.isoformat()} is outside the forecast scenario "
                            f"{self.scenario.name!r} [{self.start.isoformat()}, {self.end.isoformat()})")
        return i

    def outlook(self, when: datetime) -> Outlook:
        i = self.step_index(when)
        h = self.horizon_steps
        series = self.exo.series
        model = self.scenario.forecasts
        lower, upper = self.exo.comfort_lower_c, self.exo.comfort_upper_c
        forecast = Forecast(start=self._step_times[i], step_s=self.step_s, horizon_steps=h,
                            load=lambda: model.issue(series, i, h), comfort=lambda: (lower[i:i + h], upper[i:i + h]))
        return Outlook(forecast=forecast, comfort_lower_c=lower[i], comfort_upper_c=upper[i],
                       import_price_per_kwh=float(series["import_price_per_kwh"][i]),
                       export_price_per_kwh=float(series["export_price_per_kwh"][i]),
                       outdoor_temp_c=float(series["outdoor_temp_c"][i]))
