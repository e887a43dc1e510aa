"""Price forecaster: published day-ahead prices as they are, a learned forecast beyond them.

Day-ahead prices for a local day are published the day before at
``publication_hour_local`` (13:00 for the European day-ahead auction results). A forecast
issued before that time knows prices to the end of today, after it to the end of
tomorrow; the rest of a 48 h horizon is forecast by XGBoost from the calendar (local hour,
weekday, day off, season) and the recent prices known at the end of publication: the last
published day's price at the same time, its mean, minimum and maximum, the price a week
before, and the 7-day mean at the same time. The forecaster enforces the publication rule
itself: prices passed in ``exogenous`` beyond what was published at issue time are ignored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from controllers.forecasting.base import (
    QUANTILES,
    ForecastError,
    QuantileForecast,
    grid_step_ns,
    issue_position,
    require_columns,
    target_index,
    time_index,
    training_window,
)
from controllers.forecasting.boosting import BoostedQuantiles, BoostingParams
from controllers.forecasting.features import Calendar, known_lag, latest_same_time
from controllers.forecasting.persistence import read_model_dir, write_model_dir

_FEATURES = ("hour", "weekday", "day_off", "doy_sin", "doy_cos", "lead_h", "last_day_same_time", "last_day_mean",
             "last_day_min", "last_day_max", "week_before", "mean_7d_same_time")
_DAY_NS = 86_400_000_000_000


def published_until(times: pd.DatetimeIndex, timezone: str, publication_hour_local: float) -> pd.DatetimeIndex:
    """For each issue time: the end (local midnight) of the last day whose prices are published."""
    local = times.tz_convert(timezone)
    wall = local.tz_localize(None).as_unit("ns").asi8
    day = np.floor_divide(wall, _DAY_NS)
    hour = (wall - day * _DAY_NS) / 3.6e12
    end_day = day + np.where(hour >= publication_hour_local, 2, 1)
    naive = pd.DatetimeIndex(end_day.astype("datetime64[D]").astype("datetime64[ns]"))
    return naive.tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)


class PriceForecaster:
    """Fills a horizon with published prices, then learned forecasts. See the module docstring."""

    kind = "price"

    def __init__(self, calendar: Calendar, *, target: str = "import_price_per_kwh",
                 publication_hour_local: float = 13.0, params: BoostingParams | None = None,
                 horizon_hours: float = 48.0) -> None:
        if not 0.0 <= publication_hour_local < 24.0:
            raise ForecastError(f"publication_hour_local = {publication_hour_local} is outside [0, 24)")
        if not target.endswith("_per_kwh"):
            raise ForecastError(f"target {target!r} is not a price column (…_per_kwh)")
        self.calendar = calendar
        self.target = target
        self.publication_hour_local = publication_hour_local
        self.horizon_hours = horizon_hours
        self.model = BoostedQuantiles(_FEATURES, params)
        self.step_s: float | None = None
        self.training: dict[str, Any] = {}

    def _design(self, times: pd.DatetimeIndex, price: np.ndarray, d: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Features of targets ``p`` when prices are known before positions ``d``."""
        step_h = (times[1] - times[0]).total_seconds() / 3600.0
        day = round(24 / step_h)
        cal = self.calendar.features(times[p])
        last = np.stack([known_lag(price, d, d, k) for k in range(1, day + 1)], axis=1)
        same = np.stack([known_lag(price, d, p, latest_same_time_back(p, d, day) + k * day) for k in range(7)], axis=1)
        with np.errstate(all="ignore"):
            columns = [cal["hour"], cal["weekday"], cal["day_off"], cal["doy_sin"], cal["doy_cos"], (p - d) * step_h,
                       latest_same_time(price, d, p, day), np.nanmean(last, axis=1), np.nanmin(last, axis=1),
                       np.nanmax(last, axis=1), known_lag(price, d, p, 7 * day), np.nanmean(same, axis=1)]
        return np.column_stack(columns)

    def _boundaries(self, times: pd.DatetimeIndex) -> np.ndarray:
        """Positions of the local midnights in ``times``."""
        local = times.tz_convert(self.calendar.timezone)
        wall = local.tz_localize(None).as_unit("ns").asi8
        day = np.floor_divide(wall, _DAY_NS)
        return np.flatnonzero(np.r_[False, day[1:] != day[:-1]])

    def fit(self, history: pd.DataFrame) -> PriceForecaster:
        """Train from every local midnight after 8 days of history: targets 0..horizon beyond it."""
        require_columns(history, (self.target,), "PriceForecaster")
        step_ns = grid_step_ns(time_index(history))
        step_h = step_ns / 3.6e12
        price = history[self.target].to_numpy(dtype=float)
        horizon = max(1, round(self.horizon_hours / step_h))
        d = self._boundaries(time_index(history))
        d = d[d >= round(192 / step_h)]
        if d.size < 5:
            raise ForecastError("price history is too short; need at least 2 weeks")
        p = (d[:, None] + np.arange(horizon)[None, :]).ravel()
        d = np.repeat(d, horizon)
        keep = (p < len(price))
        d, p = d[keep], p[keep]
        keep = np.isfinite(price[p])
        self.model.fit(self._design(time_index(history), price, d[keep], p[keep]), price[p[keep]])
        self.step_s = step_ns / 1e9
        self.training = training_window(history, step_ns, keep.sum())
        return self

    def predict(self, history: pd.DataFrame, issued: pd.Timestamp, horizon_steps: int,
                exogenous: pd.DataFrame | None = None) -> QuantileForecast:
        """Published prices (from ``exogenous``, up to what is published at ``issued``), then forecasts.

        ``QuantileForecast.quantiles`` equal the point where prices are published.
        """
        require_columns(history, (self.target,), "PriceForecaster")
        step_ns = grid_step_ns(time_index(history))
        step_h = step_ns / 3.6e12
        p0_abs = issue_position(time_index(history), issued)
        lo = max(0, p0_abs - round(192 / step_h) - 1)
        times = target_index(time_index(history), time_index(history)[0], p0_abs + horizon_steps)[lo:]
        price = np.concatenate([history[self.target].to_numpy(dtype=float)[lo:p0_abs],
                                np.full(horizon_steps, np.nan)])
        p0 = p0_abs - lo
        published = published_until(pd.DatetimeIndex([pd.Timestamp(issued)]), self.calendar.timezone,
                                    self.publication_hour_local)[0]
        if exogenous is not None and self.target in exogenous:
            future = exogenous[self.target].reindex(times[p0:]).to_numpy(dtype=float).copy()
            future[times[p0:] >= published] = np.nan  # not published yet: never used
            price[p0:] = future
        unknown = np.flatnonzero(~np.isfinite(price[p0:]))
        d = p0 + (int(unknown[0]) if unknown.size else horizon_steps)
        p = p0 + np.arange(horizon_steps)
        point = price[p].copy()
        quantiles = np.repeat(point[:, None], len(QUANTILES), axis=1)
        todo = p >= d
        if todo.any():
            mean, q = self.model.predict(self._design(times, price, np.full(int(todo.sum()), d), p[todo]))
            point[todo] = mean
            quantiles[todo] = q
        return QuantileForecast(issued=pd.Timestamp(issued), times=times[p], point=point,
                                quantiles={qq: quantiles[:, i] for i, qq in enumerate(QUANTILES)},
                                unit=self.target.removesuffix("_price_per_kwh") + " per kWh")

    def config(self) -> dict[str, Any]:
        return {"calendar": dataclasses.asdict(self.calendar),
                "target": self.target, "publication_hour_local": self.publication_hour_local,
                "horizon_hours": self.horizon_hours, "step_s": self.step_s}

    def save(self, directory: Path, metrics: dict[str, Any] | None = None) -> Path:
        return write_model_dir(directory, self, {"price": self.model}, metrics)

    @classmethod
    def load(cls, directory: Path) -> PriceForecaster:
        meta, models = read_model_dir(directory, cls.kind)
        config = meta["config"]
        forecaster = cls(Calendar(**config["calendar"]), target=config["target"],
                         publication_hour_local=config["publication_hour_local"], horizon_hours=config["horizon_hours"])
        forecaster.model = models["price"]
        forecaster.step_s = config["step_s"]
        forecaster.training = meta["training_window"]
        return forecaster


def latest_same_time_back(p: np.ndarray, d: np.ndarray, period: int) -> np.ndarray:
    """Steps back from ``p`` to the latest position at the same phase of ``period`` before ``d``."""
    steps: np.ndarray = np.ceil((p - d + 1) / period).astype(np.int64) * period
    return steps
