"""PV forecaster: pvlib physical model + XGBoost model of its residual, P10/P50/P90, 7-day bias correction.

Physical model: the site's clear-sky output (pvlib Ineichen clear sky through the twin's
PVWatts chain) and, with a weather forecast (``use_weather``), the same chain on the forecast
irradiance. The learned part models the residual of the physical model as a ratio, the
clear-sky index ``measured / clear-sky`` (a ratio carries over from summer to winter where a
difference in kW does not), weighted by the clear-sky power squared so that it minimises
errors in kW. Its inputs: solar position, season, lead time, the clear-sky index observed
over the last 3 h, 24 h and 72 h before issue and, with weather, the physical model's
forecast and the forecast air temperature. A rolling bias correction then scales the forecast by the
ratio of measured to forecast energy over the last ``bias_days`` (forecasts re-issued in
hindsight at a 24 h lead from what was known then), shrunk halfway to 1 and kept in
[0.75, 1.33].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from controllers.forecasting.base import (
    QUANTILES,
    ForecastError,
    QuantileForecast,
    check_trained_step,
    grid_step_ns,
    issue_position,
    known_then_unknown,
    require_columns,
    time_index,
    training_window,
)
from controllers.forecasting.boosting import BoostedQuantiles, BoostingParams
from controllers.forecasting.features import Calendar, WindowSums, issue_pairs
from controllers.forecasting.persistence import read_model_dir, write_model_dir
from controllers.forecasting.solar import PvSite, clear_sky_pv_kw, solar_geometry, weather_pv_kw

WEATHER_COLUMNS = ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "outdoor_temp_c")
_BASE_FEATURES = ("clear_norm", "elevation_deg", "azimuth_deg", "doy_sin", "doy_cos", "lead_h",
                  "kc_3h", "kc_24h", "kc_72h")
_WEATHER_FEATURES = ("physical_norm", "temp_c")
#: Training rows need a clear-sky output above this share of capacity (the ratio is noise below).
MIN_CLEAR_SHARE = 0.02
_REFERENCE_FEATURES = ("reference_index", "reference_norm")


@dataclass(frozen=True)
class _Arrays:
    """Per-position inputs on a window of the grid starting at ``offset`` (absolute position)."""

    times: pd.DatetimeIndex
    offset: int
    pv_kw: np.ndarray  # NaN where unknown
    clear_kw: np.ndarray
    physical_kw: np.ndarray
    temp_c: np.ndarray
    reference_kw: np.ndarray  # another forecaster's forecast of each step (NaN where none)
    elevation: np.ndarray
    azimuth: np.ndarray
    doy_sin: np.ndarray
    doy_cos: np.ndarray


class PvForecaster:
    """Day-ahead (and intraday) PV forecasts for one site. See the module docstring."""

    kind = "pv"
    target = "pv_power_kw"

    def __init__(self, site: PvSite, *, params: BoostingParams | None = None, use_weather: bool = False,
                 reference_column: str | None = None, horizon_hours: float = 48.0, issue_every_hours: float = 6.0,
                 bias_days: float = 7.0) -> None:
        if not 1.0 <= horizon_hours <= 168.0:
            raise ForecastError(f"horizon_hours = {horizon_hours} is outside [1, 168]")
        if not 0.25 <= issue_every_hours <= 48.0:
            raise ForecastError(f"issue_every_hours = {issue_every_hours} is outside [0.25, 48]")
        if not 0.0 <= bias_days <= 60.0:
            raise ForecastError(f"bias_days = {bias_days} is outside [0, 60]")
        self.site = site
        self.use_weather = use_weather
        self.reference_column = reference_column
        self.horizon_hours = horizon_hours
        self.issue_every_hours = issue_every_hours
        self.bias_days = bias_days
        features = (_BASE_FEATURES + (_WEATHER_FEATURES if use_weather else ())
                    + (_REFERENCE_FEATURES if reference_column else ()))
        self.model = BoostedQuantiles(features, params)
        self.step_s: float | None = None
        self.training: dict[str, Any] = {}

    # --- inputs ------------------------------------------------------------------------------------------

    def _arrays(self, times: pd.DatetimeIndex, offset: int, pv_kw: np.ndarray, weather: pd.DataFrame | None,
                reference_kw: np.ndarray | None = None) -> _Arrays:
        step_s = (times[1] - times[0]).total_seconds()
        temp = weather["outdoor_temp_c"].to_numpy(dtype=float) if weather is not None else np.full(len(times), 15.0)
        clear = clear_sky_pv_kw(times, step_s, self.site, temp)
        physical = weather_pv_kw(times, step_s, self.site, weather) if weather is not None else clear
        elevation, azimuth = solar_geometry(times, step_s, self.site.location)
        season = Calendar(self.site.location.timezone).features(times)
        reference = reference_kw if reference_kw is not None else np.full(len(times), np.nan)
        return _Arrays(times, offset, pv_kw, clear, physical, temp, reference, elevation, azimuth,
                       season["doy_sin"], season["doy_cos"])

    def _design(self, a: _Arrays, p0: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Feature matrix for issues at ``p0`` and targets ``p`` (window positions)."""
        step_h = (a.times[1] - a.times[0]).total_seconds() / 3600.0
        cap = self.site.capacity
        pv = WindowSums(a.pv_kw)
        clear = WindowSums(np.where(np.isfinite(a.pv_kw), a.clear_kw, np.nan))
        columns = [a.clear_kw[p] / cap, a.elevation[p], a.azimuth[p], a.doy_sin[p], a.doy_cos[p],
                   (p - p0) * step_h]
        for hours in (3, 24, 72):
            n = max(1, round(hours / step_h))
            energy, _ = pv.total(p0, n)
            possible, _ = clear.total(p0, n)
            with np.errstate(invalid="ignore", divide="ignore"):
                columns.append(np.where(possible > 0.05 * cap, energy / np.maximum(possible, 1e-9), np.nan))
        if self.use_weather:
            columns += [a.physical_kw[p] / cap, a.temp_c[p]]
        if self.reference_column:
            with np.errstate(invalid="ignore", divide="ignore"):
                columns += [np.where(a.clear_kw[p] > 0, a.reference_kw[p] / a.clear_kw[p], np.nan),
                            a.reference_kw[p] / cap]
        return np.column_stack(columns)

    # --- training ------------------------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> PvForecaster:
        """Train on every issue time of ``history`` (every ``issue_every_hours``, after 3 days of data)."""
        require_columns(history, (self.target,) + (WEATHER_COLUMNS if self.use_weather else ())
                        + ((self.reference_column,) if self.reference_column else ()), "PvForecaster")
        step_ns = grid_step_ns(time_index(history))
        step_h = step_ns / 3.6e12
        a = self._arrays(time_index(history), 0, history[self.target].to_numpy(dtype=float),
                         history[list(WEATHER_COLUMNS)] if self.use_weather else None,
                         history[self.reference_column].to_numpy(dtype=float) if self.reference_column else None)
        horizon = max(1, round(self.horizon_hours / step_h))
        first = round(72 / step_h)
        if first >= len(history) - 1:
            raise ForecastError(f"PV history of {len(history) * step_h:.0f} h is too short; need more than 72 h")
        p0, p = issue_pairs(first, len(history) - 1, max(1, round(self.issue_every_hours / step_h)), horizon,
                            len(history))
        lit = (a.clear_kw[p] > MIN_CLEAR_SHARE * self.site.capacity) & np.isfinite(a.pv_kw[p])
        p0, p = p0[lit], p[lit]
        x = self._design(a, p0, p)
        clear = a.clear_kw[p]
        self.model.fit(x, a.pv_kw[p] / clear, weight=(clear / self.site.capacity) ** 2)
        self.step_s = step_ns / 1e9
        self.training = training_window(history, step_ns, len(p))
        return self

    # --- forecasting ---------------------------------------------------------------------------------------

    def predict(self, history: pd.DataFrame, issued: pd.Timestamp, horizon_steps: int,
                exogenous: pd.DataFrame | None = None) -> QuantileForecast:
        """Forecast ``horizon_steps`` steps from ``issued`` using history before it (and weather, if used)."""
        require_columns(history, (self.target,), "PvForecaster")
        step_ns = grid_step_ns(time_index(history))
        check_trained_step(self.step_s, step_ns)
        p0_abs = issue_position(time_index(history), issued)
        step_h = step_ns / 3.6e12
        back = round((72 + 24 + 24 * self.bias_days) / step_h) + 1
        lo = max(0, p0_abs - back)
        times, pv = known_then_unknown(history, self.target, lo, p0_abs, horizon_steps)
        weather = None
        if self.use_weather:
            weather = self._weather(history, times, p0_abs - lo, exogenous)
        reference = None
        if self.reference_column:
            # Past steps: as archived; target steps: the reference forecast issued with this one.
            past = history[self.reference_column].to_numpy(dtype=float)[lo:p0_abs]
            future = np.full(len(times) - len(past), np.nan)
            if exogenous is not None and self.reference_column in exogenous:
                future = exogenous[self.reference_column].reindex(times[len(past):]).to_numpy(dtype=float)
            reference = np.concatenate([past, future])
        a = self._arrays(times, lo, pv, weather, reference)
        p0_rel = p0_abs - lo
        p = p0_rel + np.arange(horizon_steps)
        x = self._design(a, np.full(horizon_steps, p0_rel), p)
        mean, q = self.model.predict(x)
        point = a.clear_kw[p] * mean
        quantiles = a.clear_kw[p][:, None] * q
        factor = self._bias_factor(a, p0_rel, step_h)
        limit = sum(arr.inverter_ac_kw for arr in self.site.arrays)
        dark = a.clear_kw[p] <= 0
        point = np.where(dark, 0.0, np.clip(point * factor, 0.0, limit))
        quantiles = np.where(dark[:, None], 0.0, np.clip(quantiles * factor, 0.0, limit))
        quantiles = np.sort(quantiles, axis=1)
        return QuantileForecast(issued=pd.Timestamp(issued), times=times[p], point=point,
                                quantiles={qq: quantiles[:, i] for i, qq in enumerate(QUANTILES)}, unit="kW")

    def _weather(self, history: pd.DataFrame, times: pd.DatetimeIndex, n_known: int,
                 exogenous: pd.DataFrame | None) -> pd.DataFrame:
        """Measured weather before the issue time, the issued weather forecast after it."""
        past = history[list(WEATHER_COLUMNS)].reindex(times[:n_known])
        if exogenous is None:
            raise ForecastError("this PV forecaster uses weather: pass the weather forecast as exogenous")
        require_columns(exogenous, WEATHER_COLUMNS, "PV weather forecast")
        future = exogenous[list(WEATHER_COLUMNS)].reindex(times[n_known:])
        if future.isna().any().any():
            raise ForecastError("weather forecast does not cover every target step")
        return pd.concat([past, future]).ffill().bfill()

    def _bias_factor(self, a: _Arrays, p0: int, step_h: float) -> float:
        """Measured / forecast energy over the last ``bias_days``, forecasts re-issued at a 24 h lead."""
        if self.bias_days <= 0:
            return 1.0
        day = round(24 / step_h)
        first = max(round(72 / step_h) + day, p0 - round(self.bias_days * 24 / step_h))
        q = np.arange(first, p0)
        q = q[(a.clear_kw[q] > 0) & np.isfinite(a.pv_kw[q])]
        if q.size < 4:
            return 1.0
        x = self._design(a, q - day, q)
        mean, _ = self.model.predict(x)
        predicted = np.clip(a.clear_kw[q] * mean, 0.0, None).sum()
        measured = a.pv_kw[q].sum()
        if predicted < 0.5 * self.site.capacity / step_h:  # less than half an hour at full power
            return 1.0
        return float(np.clip(1.0 + 0.5 * (measured / predicted - 1.0), 0.75, 1.33))

    # --- persistence ---------------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"site": self.site.to_dict(), "use_weather": self.use_weather,
                "reference_column": self.reference_column, "horizon_hours": self.horizon_hours,
                "issue_every_hours": self.issue_every_hours, "bias_days": self.bias_days, "step_s": self.step_s}

    def save(self, directory: Path, metrics: dict[str, Any] | None = None) -> Path:
        return write_model_dir(directory, self, {"pv": self.model}, metrics)

    @classmethod
    def load(cls, directory: Path) -> PvForecaster:
        meta, models = read_model_dir(directory, cls.kind)
        config = meta["config"]
        forecaster = cls(PvSite.from_dict(config["site"]), use_weather=config["use_weather"],
                         reference_column=config.get("reference_column"),
                         horizon_hours=config["horizon_hours"], issue_every_hours=config["issue_every_hours"],
                         bias_days=config["bias_days"])
        forecaster.model = models["pv"]
        forecaster.step_s = config["step_s"]
        forecaster.training = meta["training_window"]
        return forecaster
