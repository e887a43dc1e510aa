"""Feature building blocks on a regular grid: calendar (with public holidays) and lags known at issue time.

Positions count grid steps. A forecast issued at position ``p0`` may use values at
positions ``< p0`` only; every lag helper takes ``p0`` per row and returns NaN for anything
not yet known (XGBoost treats NaN as missing), so no feature can leak the future.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import holidays
import numpy as np
import pandas as pd

from controllers.forecasting.base import ForecastError

_DAY_NS = 86_400_000_000_000


@functools.cache
def _holiday_days(country: str, subdivision: str | None, first_year: int, last_year: int) -> np.ndarray:
    try:
        calendar = holidays.country_holidays(country, subdiv=subdivision, years=range(first_year, last_year + 1))
    except NotImplementedError:
        raise ForecastError(f"unknown holiday calendar country={country!r} subdivision={subdivision!r} "
                            f"(ISO 3166 codes, e.g. FR, CZ, US with CA)") from None
    days = [np.datetime64(d, "D").astype(np.int64) for d in calendar]
    return np.array(sorted(days), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Local calendar of a site: its time zone and public holidays (``holidays`` package)."""

    timezone: str
    country: str | None = None
    subdivision: str | None = None

    def features(self, times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
        """Calendar features of the interval starts ``times``.

        ``hour`` (local, fractional), ``weekday`` (Mon 0), ``day_off`` (weekend or holiday),
        ``holiday``, ``doy_sin``/``doy_cos`` (season).
        """
        local = times.tz_convert(self.timezone)
        wall = local.tz_localize(None).as_unit("ns").asi8
        day = np.floor_divide(wall, _DAY_NS)
        hour = (wall - day * _DAY_NS) / 3.6e12
        weekday = ((day + 3) % 7).astype(float)  # 1970-01-01 was a Thursday
        holiday = np.zeros(len(times))
        if self.country:
            years = local.year
            days = _holiday_days(self.country, self.subdivision, int(years.min()), int(years.max()))
            holiday = np.isin(day, days).astype(float)
        doy = (local.day_of_year.to_numpy() - 1 + hour / 24.0) / 365.25
        return {"hour": hour, "weekday": weekday, "day_off": np.maximum(holiday, weekday >= 5),
                "holiday": holiday, "doy_sin": np.sin(2 * np.pi * doy), "doy_cos": np.cos(2 * np.pi * doy)}


def issue_pairs(first_issue: int, last_issue: int, issue_every: int, horizon: int,
                n_known: int) -> tuple[np.ndarray, np.ndarray]:
    """Issue and target positions ``(p0, p)`` of every training row.

    Issues at ``first_issue, first_issue + issue_every, … <= last_issue``; targets
    ``p0 .. p0 + horizon - 1`` that lie before ``n_known`` (their actual is known).
    """
    p0 = np.arange(first_issue, last_issue + 1, issue_every)
    p = p0[:, None] + np.arange(horizon)[None, :]
    p0 = np.broadcast_to(p0[:, None], p.shape)
    keep = p < n_known
    return p0[keep], p[keep]


def known_lag(values: np.ndarray, p0: np.ndarray, p: np.ndarray, lag_steps: int | np.ndarray) -> np.ndarray:
    """``values[p - lag]`` where that position is known at issue ``p0`` (before it), else NaN."""
    idx = p - lag_steps
    ok = (idx >= 0) & (idx < p0) & (idx < len(values))
    out = np.full(len(p), np.nan)
    out[ok] = values[idx[ok]]
    return out


def latest_same_time(values: np.ndarray, p0: np.ndarray, p: np.ndarray, period_steps: int) -> np.ndarray:
    """The most recent known value at the same phase of ``period_steps`` (e.g. same time of day)."""
    if period_steps <= 0:
        raise ForecastError(f"period_steps must be positive, got {period_steps}")
    back = np.ceil((p - p0 + 1) / period_steps).astype(np.int64) * period_steps
    return known_lag(values, p0, p, back)


class WindowSums:
    """Sums and counts of the finite values of a series, for O(1) window means before any position."""

    def __init__(self, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        self._sum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
        self._count = np.concatenate([[0], np.cumsum(finite)])

    def total(self, end: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count of positions ``[end - length, end)`` (clipped at 0)."""
        end = np.clip(end, 0, len(self._sum) - 1)
        start = np.clip(end - length, 0, None)
        return self._sum[end] - self._sum[start], self._count[end] - self._count[start]

    def mean(self, end: np.ndarray, length: int) -> np.ndarray:
        total, count = self.total(end, length)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)
