"""What the live house cannot measure: forecasts, current prices and the comfort schedule.

A :class:`ForecastSource` gives, for a house time, an :class:`Outlook`: the ``Forecast`` a
controller sees (same type and grid as in simulation), the comfort band now, today's prices
and an outdoor temperature to fall back on when the outdoor sensor is stale.
:class:`ScenarioForecasts` replays a scenario's *issued* forecasts on the house clock: against
the emulator, at the scenario's own dates (the forecasts the simulated run sees); against a real
house, *on the calendar* — the same weekday and time of day (and for a scenario of a year or
more, the same week of the year), so that a week-long or year-long scenario covers any date.
Until a live feed exists (a weather service, the day-ahead market), a real house then sees
plausible forecasts and the scenario's prices, not today's: say so to whoever reads its KPIs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from hardware.errors import LiveError
from twin.config import HouseConfig
from twin.contracts import Forecast
from twin.exogenous import build_exogenous
from twin.scenario import IRRADIANCE_COLUMNS, Scenario
from twin.thermal import build_matrices

WEEK = pd.Timedelta(weeks=1)
YEAR = pd.Timedelta(weeks=52)  # 364 days: keeps the weekday


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

    def __init__(self, house: HouseConfig, scenario: Scenario, horizon_s: float, calendar: bool = False) -> None:
        self.scenario = scenario
        self.step_s = scenario.step_s
        self.horizon_steps = max(1, math.ceil(horizon_s / self.step_s))
        thermal = build_matrices(house.rooms, house.couplings)
        self.exo = build_exogenous(house, scenario, self.horizon_steps + 1, thermal.mass_node, thermal.n_nodes)
        self.start = scenario.start.to_pydatetime()
        self._step_epoch_s = scenario.index.asi8 / 1e9
        self.period: pd.Timedelta | None = None
        self.end: datetime | None = scenario.end.to_pydatetime()
        if calendar:
            duration = pd.Timedelta(seconds=scenario.duration_s)
            if duration >= YEAR:
                self.period = YEAR
            elif duration >= WEEK:
                self.period = WEEK
            else:
                raise LiveError(f"scenario {scenario.name!r} covers {duration.total_seconds() / 86400:g} days; "
                                f"replayed on the calendar it must cover at least a week")
            self.end = None

    def recorded_weather(self, times: pd.DatetimeIndex) -> pd.DataFrame | None:
        """The scenario's irradiance at house times ``times`` (the weather a day's savings replay needs)."""
        columns = [c for c in IRRADIANCE_COLUMNS if c in self.scenario.data]
        if not columns:
            return None
        mapped = pd.DatetimeIndex([self.scenario_time(t.to_pydatetime()) for t in times])
        frame = self.scenario.data[columns].reindex(mapped, method="ffill")
        frame.index = times
        return frame

    def scenario_time(self, when: datetime) -> datetime:
        """The scenario's moment that stands for house time ``when``.

        On the calendar: the same local weekday and time of day, whole periods (a week, or 52
        weeks) back or forth on the local wall clock — so a summer hour maps to the same local hour
        even when the scenario's date is in winter time.
        """
        if self.period is None:
            return when
        tz = self.scenario.tz
        local = pd.Timestamp(when).tz_convert(tz).tz_localize(None)
        periods = math.floor((local - self.scenario.start.tz_localize(None)) / self.period)
        mapped = (local - periods * self.period).tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
        return mapped.to_pydatetime()

    def step_index(self, when: datetime) -> int:
        offset_s = self.scenario_time(when).timestamp() - self.start.timestamp()
        i = int((offset_s + 1e-6) // self.step_s)
        if not 0 <= i < self.exo.n_steps:
            raise LiveError(f"house time {when.isoformat()} is outside the forecast scenario "
                            f"{self.scenario.name!r} [{self.start.isoformat()}, {self.scenario.end.isoformat()})")
        return i

    def outlook(self, when: datetime) -> Outlook:
        i = self.step_index(when)
        h = self.horizon_steps
        series = self.exo.series
        model = self.scenario.forecasts
        lower, upper = self.exo.comfort_lower_c, self.exo.comfort_upper_c
        into_step_s = self.scenario_time(when).timestamp() - self._step_epoch_s[i]
        step_start = datetime.fromtimestamp(when.timestamp() - into_step_s, when.tzinfo)
        forecast = Forecast(start=step_start, step_s=self.step_s, horizon_steps=h,
                            load=lambda: model.issue(series, i, h), comfort=lambda: (lower[i:i + h], upper[i:i + h]))
        return Outlook(forecast=forecast, comfort_lower_c=lower[i], comfort_upper_c=upper[i],
                       import_price_per_kwh=float(series["import_price_per_kwh"][i]),
                       export_price_per_kwh=float(series["export_price_per_kwh"][i]),
                       outdoor_temp_c=float(series["outdoor_temp_c"][i]))
