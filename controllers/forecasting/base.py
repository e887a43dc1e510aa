"""What every forecaster shares: the forecast it returns, its protocol, and the issue/target grid.

Forecasters learn from a *history* frame: canonical columns (``pv_power_kw``,
``base_load_kw``, ``outdoor_temp_c``, ``import_price_per_kwh`` …) on a tz-aware,
fixed-frequency index, each row the mean over its interval. A forecast is *issued* at a
grid time ``t0`` and covers the steps starting at ``t0, t0 + step, …``; only rows before
``t0`` may inform it, and every forecaster slices its history to enforce that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import pandas as pd

from twin.errors import TwinError

#: The quantiles every probabilistic forecaster issues (P10, P50, P90).
QUANTILES = (0.1, 0.5, 0.9)


class ForecastError(TwinError, ValueError):
    """A forecaster cannot be trained or used with what it was given."""


@dataclass(frozen=True)
class QuantileForecast:
    """A forecast issued at ``issued`` for the intervals starting at ``times``.

    ``point`` is the forecaster's best estimate of the interval mean (the conditional mean,
    what an MPC should plan with); ``quantiles`` maps each of :data:`QUANTILES` to its
    series, never crossing (P10 ≤ P50 ≤ P90).
    """

    issued: pd.Timestamp
    times: pd.DatetimeIndex
    point: np.ndarray
    quantiles: Mapping[float, np.ndarray] = field(default_factory=dict)
    unit: str = ""

    def frame(self) -> pd.DataFrame:
        data = {"point": self.point}
        data.update({f"p{round(q * 100):02d}": v for q, v in self.quantiles.items()})
        return pd.DataFrame(data, index=self.times)


@runtime_checkable
class Forecaster(Protocol):
    """Learns one quantity from history and forecasts it.

    ``target`` names the canonical column it forecasts. ``fit`` trains on every issue time
    the history allows; ``predict`` issues one forecast at ``issued`` (a time on the
    history's grid, at or after its last row + 1 step is allowed) for ``horizon_steps``
    steps, using only history rows before ``issued`` and, when given, ``exogenous``:
    issued forecasts of inputs (weather) for the target steps. ``save``/``load`` persist
    the trained model with its metadata.
    """

    kind: str
    target: str
    training: dict[str, Any]  # what the last fit saw (empty before any fit)

    def fit(self, history: pd.DataFrame) -> Forecaster: ...

    def predict(self, history: pd.DataFrame, issued: pd.Timestamp, horizon_steps: int,
                exogenous: pd.DataFrame | None = None) -> QuantileForecast: ...

    def save(self, directory: Path, metrics: dict[str, Any] | None = None) -> Path: ...


def grid_step_ns(index: pd.DatetimeIndex) -> int:
    """The fixed step of a history index [ns]; raises ForecastError if it has none."""
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or len(index) < 2:
        raise ForecastError("history needs a tz-aware DatetimeIndex of at least 2 rows")
    ns = index.as_unit("ns").asi8
    steps = np.diff(ns)
    if (steps != steps[0]).any() or steps[0] <= 0:
        raise ForecastError("history index must be evenly spaced and increasing (resample it first)")
    return int(steps[0])


def require_columns(history: pd.DataFrame, columns: tuple[str, ...] | list[str], who: str) -> None:
    """Raise ForecastError naming ``who`` and the first of ``columns`` missing from ``history``."""
    missing = [c for c in columns if c not in history.columns]
    if missing:
        raise ForecastError(f"{who} needs history column(s) {missing}; history has {list(history.columns)}")


def issue_position(index: pd.DatetimeIndex, issued: pd.Timestamp) -> int:
    """Grid position of ``issued`` (may be one past the last row); rows before it are known."""
    step = grid_step_ns(index)
    t0 = pd.Timestamp(issued).as_unit("ns").value
    offset = t0 - int(index.as_unit("ns").asi8[0])
    if offset % step:
        raise ForecastError(f"issue time {issued} is not on the history's {step / 6e10:g}-minute grid")
    return offset // step


def target_index(index: pd.DatetimeIndex, issued: pd.Timestamp, horizon_steps: int) -> pd.DatetimeIndex:
    """The ``horizon_steps`` grid times from ``issued`` on, on the step and zone of ``index``."""
    step = pd.Timedelta(grid_step_ns(index), unit="ns")
    return pd.date_range(pd.Timestamp(issued).tz_convert(index.tz), periods=horizon_steps, freq=step)


def check_trained_step(trained_step_s: float | None, step_ns: int) -> None:
    """A model trained on one grid step cannot forecast a history on another."""
    if trained_step_s is not None and abs(step_ns / 1e9 - trained_step_s) > 1e-6:
        raise ForecastError(f"model trained on {trained_step_s:g} s steps, history has {step_ns / 1e9:g} s")


def time_index(frame: pd.DataFrame | pd.Series) -> pd.DatetimeIndex:
    """``frame``'s index as the tz-aware :class:`~pandas.DatetimeIndex` every history here is on."""
    return cast(pd.DatetimeIndex, frame.index)


def training_window(history: pd.DataFrame, step_ns: int, rows: int) -> dict[str, Any]:
    """The ``training_window`` metadata a fitted model keeps: first and end time, training rows."""
    return {"start": str(history.index[0]), "end": str(history.index[-1] + pd.Timedelta(step_ns)), "rows": int(rows)}


def known_then_unknown(history: pd.DataFrame, column: str, lo: int, p0: int,
                       horizon_steps: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Grid times from row ``lo`` to ``horizon_steps`` past issue position ``p0``, and ``column`` on them.

    Values are known before ``p0`` and NaN from it on (the future is never read).
    """
    times = target_index(time_index(history), time_index(history)[0], p0 + horizon_steps)[lo:]
    known = history[column].to_numpy(dtype=float)[lo:p0]
    return times, np.concatenate([known, np.full(len(times) - len(known), np.nan)])


def extend_index(index: pd.DatetimeIndex, steps: int) -> pd.DatetimeIndex:
    """``index`` followed by ``steps`` more steps of the same frequency."""
    step = pd.Timedelta(grid_step_ns(index), unit="ns")
    return pd.date_range(index[0], periods=len(index) + steps, freq=step)


def sort_quantiles(values: np.ndarray) -> np.ndarray:
    """Quantile columns sorted per row (gradient boosting can cross them)."""
    return np.sort(values, axis=1)
