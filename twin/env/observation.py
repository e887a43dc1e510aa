"""Observation → flat vector: the one mapping shared by the environment and the policy adapter.

The encoder reads only :class:`~twin.contracts.Observation` fields, so the same vector comes
out of a simulated, replayed or live house. Every feature has a physical unit and bounds; with
``normalize`` the vector holds ``(value − center) / scale`` instead (fixed, documented
constants, not running statistics, so a trained policy needs nothing but this table).
Values outside the bounds are clipped to them; a non-finite value (a missing reading) is
encoded as its ``center`` — the safety layer, not the policy, deals with stale inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from gymnasium import spaces

from twin.config import HouseConfig
from twin.contracts import Forecast, Observation
from twin.errors import ConfigError

#: Forecast series in the observation, each as ``forecast_hours`` hourly means.
FORECAST_FEATURES = ("import_price_per_kwh", "pv_power_kw", "base_load_kw")
MAX_FORECAST_HOURS = 168
MAX_EV_HOURS = 168.0  # time to departure is clipped here [h]
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True, slots=True)
class Feature:
    """One entry of the observation vector: physical ``unit`` and bounds, normalisation constants."""

    name: str
    unit: str
    low: float
    high: float
    center: float
    scale: float
    description: str


def _forecast_scale(field: str, pv_scale_kw: float) -> tuple[str, float, float, float, float]:
    """``(unit, low, high, center, scale)`` of a forecast series."""
    if field == "import_price_per_kwh":
        return "currency/kWh", -10.0, 10.0, 0.2, 0.1
    if field == "pv_power_kw":
        return "kW", 0.0, 10_000.0, 0.0, pv_scale_kw
    return "kW", 0.0, 1000.0, 0.0, 2.0  # base_load_kw


def build_features(house: HouseConfig, forecast_hours: int) -> tuple[Feature, ...]:
    """The feature table of ``house``: devices it lacks have no features."""
    pv_scale = max(1.0, house.pv_peak_kw)
    out: list[Feature] = []
    for room in house.room_names:
        out.append(Feature(f"room_temp_c.{room}", "°C", -60.0, 80.0, 20.0, 5.0, "air temperature"))
    for room in house.room_names:
        out.append(Feature(f"comfort_lower_c.{room}", "°C", 5.0, 40.0, 20.0, 5.0, "comfort band, lower bound now"))
    for room in house.room_names:
        out.append(Feature(f"comfort_upper_c.{room}", "°C", 5.0, 40.0, 20.0, 5.0, "comfort band, upper bound now"))
    for room in house.room_names:
        out.append(Feature(f"relay_on.{room}", "0/1", 0.0, 1.0, 0.0, 1.0, "heater relay state"))
    out.append(Feature("outdoor_temp_c", "°C", -60.0, 60.0, 5.0, 10.0, "outdoor air temperature"))
    if house.battery is not None:
        out.append(Feature("battery_soc", "0..1", 0.0, 1.0, 0.5, 0.5, "battery state of charge"))
    if house.ev_charger is not None:
        out.append(Feature("ev_connected", "0/1", 0.0, 1.0, 0.0, 1.0, "a car is plugged in"))
        out.append(Feature("ev_energy_needed_kwh", "kWh", 0.0, 300.0, 0.0, 20.0,
                           "energy the car still needs to reach its target (0 without a car)"))
        out.append(Feature("ev_hours_to_departure", "h", 0.0, MAX_EV_HOURS, 0.0, 12.0,
                           "time until the car leaves (0 without a car)"))
    out.append(Feature("pv_power_kw", "kW", 0.0, 10_000.0, 0.0, pv_scale, "PV power now"))
    out.append(Feature("base_load_kw", "kW", 0.0, 1000.0, 0.0, 2.0, "non-controllable load now"))
    out.append(Feature("import_price_per_kwh", "currency/kWh", -10.0, 10.0, 0.2, 0.1, "import price now"))
    out.append(Feature("export_price_per_kwh", "currency/kWh", -10.0, 10.0, 0.0, 0.1, "export price now"))
    for field in FORECAST_FEATURES:
        unit, lo, hi, center, scale = _forecast_scale(field, pv_scale)
        for h in range(forecast_hours):
            out.append(Feature(f"forecast.{field}+{h}h", unit, lo, hi, center, scale,
                               f"issued forecast, mean over hour {h} from the current data step"))
    out.append(Feature("time_of_day_sin", "1", -1.0, 1.0, 0.0, 1.0, "sin(2π · local hour / 24)"))
    out.append(Feature("time_of_day_cos", "1", -1.0, 1.0, 0.0, 1.0, "cos(2π · local hour / 24)"))
    out.append(Feature("day_of_week_sin", "1", -1.0, 1.0, 0.0, 1.0, "sin(2π · weekday / 7), Monday = 0"))
    out.append(Feature("day_of_week_cos", "1", -1.0, 1.0, 0.0, 1.0, "cos(2π · weekday / 7)"))
    return tuple(out)


class ObservationEncoder:
    """Turns an :class:`Observation` of ``house`` into the float32 vector of :attr:`space`.

    Args:
        house: The house whose rooms and devices define the features.
        forecast_hours: Hours of price, PV and load forecasts in the vector (hourly means).
        normalize: Encode ``(value − center) / scale`` instead of physical units.
    """

    def __init__(self, house: HouseConfig, forecast_hours: int = 24, normalize: bool = True) -> None:
        if isinstance(forecast_hours, bool) or not isinstance(forecast_hours, int) or not (
                1 <= forecast_hours <= MAX_FORECAST_HOURS):
            raise ConfigError(f"forecast_hours = {forecast_hours!r} must be an integer in [1, {MAX_FORECAST_HOURS}]",
                              "forecast_hours")
        self.house = house
        self.forecast_hours = forecast_hours
        self.normalize = bool(normalize)
        self.features = build_features(house, forecast_hours)
        self.names = tuple(f.name for f in self.features)
        low = np.array([f.low for f in self.features])
        high = np.array([f.high for f in self.features])
        self._center = np.array([f.center for f in self.features])
        self._inv_scale = 1.0 / np.array([f.scale for f in self.features])
        if not self.normalize:
            self._center = np.zeros(len(self.features))
            self._inv_scale = np.ones(len(self.features))
        self._low = (low - self._center) * self._inv_scale
        self._high = (high - self._center) * self._inv_scale
        self.space = spaces.Box(self._low.astype(np.float32), self._high.astype(np.float32), dtype=np.float32)
        self._n_rooms = len(house.rooms)
        self._battery = house.battery is not None
        self._ev = house.ev_charger is not None
        self._departure: tuple[datetime | None, float] = (None, math.nan)  # the last departure read, its epoch s

    @property
    def size(self) -> int:
        return len(self.features)

    def forecast_block(self, forecast: Forecast | Mapping[str, np.ndarray], step_s: float) -> np.ndarray:
        """Hourly means of :data:`FORECAST_FEATURES` (concatenated) from a forecast on a ``step_s`` grid.

        ``forecast`` is an observation's :class:`Forecast` or the mapping a ``ForecastModel``
        issues; both give the same block.
        """
        per_hour = steps_per_hour(step_s)
        n = self.forecast_hours * per_hour
        blocks = []
        for field in FORECAST_FEATURES:
            values = forecast[field] if isinstance(forecast, Mapping) else getattr(forecast, field)
            if len(values) < n:
                raise ConfigError(f"the observation's forecast covers {len(values) * step_s / 3600:g} h, the "
                                  f"encoder needs {self.forecast_hours} h", "forecast_hours")
            values = np.asarray(values[:n], dtype=float)
            blocks.append(values.reshape(self.forecast_hours, per_hour).mean(axis=1) if per_hour > 1 else values)
        return np.concatenate(blocks)

    def encode(self, obs: Observation, forecast_block: np.ndarray | None = None) -> np.ndarray:
        """The vector of ``obs``; ``forecast_block`` (from :meth:`forecast_block`) saves recomputing it."""
        if forecast_block is None:
            forecast_block = self.forecast_block(obs.forecast, obs.forecast.step_s)
        raw = np.empty(self.size)
        n = self._n_rooms
        if n:
            raw[:n] = obs.room_temp_c
            raw[n:2 * n] = obs.comfort_lower_c
            raw[2 * n:3 * n] = obs.comfort_upper_c
            raw[3 * n:4 * n] = obs.relay_on
        scalars = [obs.outdoor_temp_c]
        if self._battery:
            scalars.append(obs.battery_soc)
        now = obs.time
        if self._ev:
            if obs.ev_connected and obs.ev_departure is not None:
                departure = obs.ev_departure
                if departure is not self._departure[0]:  # the same car's departure for hours of steps
                    self._departure = (departure, departure.timestamp())
                hours = (self._departure[1] - obs.epoch_s) / 3600.0
                scalars += [1.0, obs.ev_energy_needed_kwh, hours]
            else:
                scalars += [0.0, 0.0, 0.0]
        day = (now.hour + now.minute / 60.0 + now.second / 3600.0) * (_TWO_PI / 24.0)
        week = now.weekday() * (_TWO_PI / 7.0)
        scalars += [obs.pv_power_kw, obs.base_load_kw, obs.import_price_per_kwh, obs.export_price_per_kwh]
        end = 4 * n + len(scalars)
        raw[4 * n:end] = scalars
        raw[end:-4] = forecast_block
        raw[-4:] = (math.sin(day), math.cos(day), math.sin(week), math.cos(week))
        if not math.isfinite(raw.sum()):
            raw = np.where(np.isfinite(raw), raw, self._center)
        # In place, and the last operation writes float32 directly: the same values as out-of-place steps
        # and a final astype (each result is rounded once, to float64, then to float32).
        np.subtract(raw, self._center, out=raw)
        np.multiply(raw, self._inv_scale, out=raw)
        np.maximum(raw, self._low, out=raw)
        encoded = np.empty(raw.shape, dtype=np.float32)
        np.minimum(raw, self._high, out=encoded)
        return encoded

    def encode_block_v(self, values: np.ndarray, start: int) -> np.ndarray:
        """Features ``start … start + width`` of many observations from their physical values ``(…, width)``.

        :meth:`encode`'s steps (missing → center, normalise, clip) for those columns.
        """
        stop = start + values.shape[-1]
        center = self._center[start:stop]
        if not math.isfinite(values.sum()):
            values = np.where(np.isfinite(values), values, center)
        vector: np.ndarray = (values - center) * self._inv_scale[start:stop]
        np.minimum(np.maximum(vector, self._low[start:stop], out=vector), self._high[start:stop], out=vector)
        return vector

    def table(self) -> list[tuple[str, str, float, float, float, float]]:
        """``(name, unit, low, high, center, scale)`` per feature (for docs and reports)."""
        return [(f.name, f.unit, f.low, f.high, f.center, f.scale) for f in self.features]


def steps_per_hour(step_s: float) -> int:
    """Data steps per hour; the scenario's step must divide an hour."""
    per_hour = 3600.0 / step_s
    if step_s > 3600.0 or abs(per_hour - round(per_hour)) > 1e-9:
        raise ConfigError(f"the scenario's data step of {step_s:g} s does not divide an hour; hourly forecast "
                          "features need one that does (e.g. 15, 30 or 60 min)", "step_s")
    return round(per_hour)
