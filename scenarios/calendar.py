"""Calendar quantities of a scenario's time index, computed once and vectorised.

Local wall-clock hour, weekday and day number (which follow DST), the year fraction and a
season phase (0 in mid-winter, 1 in mid-summer; flipped south of the equator), and mean solar
time. Used by the synthetic generators (``scenarios.synthetic``) and by the historical reader
(``scenarios.historical.reader``) for comfort schedules and seasonal curves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

import numpy as np
import pandas as pd

from twin.config import Location

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
YEAR_DAYS = 365.2425
#: Year fraction of mid-January (coldest) — the phase of every seasonal cosine.
MID_JANUARY = 14.5 / 365.0



def scenario_index(start: dt.date, days: int, step_minutes: int, timezone: str) -> pd.DatetimeIndex:
    """A fixed-frequency index from local midnight of ``start`` to local midnight ``days`` later.

    Built in UTC and converted, so steps are equal in absolute time across DST changes
    (a 23-hour local day has 92 quarter-hours, a 25-hour day 100).
    """
    step = pd.Timedelta(minutes=step_minutes)
    begin = pd.Timestamp(start).tz_localize(timezone, nonexistent="shift_forward")
    finish = pd.Timestamp(start + dt.timedelta(days=days)).tz_localize(timezone, nonexistent="shift_forward")
    periods = (finish - begin) // step
    # Nanosecond unit: pandas 3 would infer seconds from a date, and ``asi8`` users expect ns.
    index = pd.date_range(begin.tz_convert("UTC"), periods=periods, freq=step, unit="ns").tz_convert(timezone)
    index.freq = step
    return index


@dataclasses.dataclass(frozen=True)
class Calendar:
    """Vectorised calendar quantities of an index (computed once, by :func:`calendar_of`)."""

    utc_ns: np.ndarray
    wall_ns: np.ndarray  # local wall-clock time as naive ns
    wall_hour: np.ndarray  # local hour of day, fractional
    weekday: np.ndarray  # local, Monday = 0
    local_day: np.ndarray  # 0-based local calendar day number within the index
    year_fraction: np.ndarray  # 0 at 1 January, from UTC time
    season: np.ndarray  # 0 in mid-winter (mid-January in the north) .. 1 in mid-summer
    solar_hour: np.ndarray  # mean solar time of day [h]
    step_s: float


def calendar_of(index: pd.DatetimeIndex, location: Location) -> Calendar:
    """The calendar quantities of ``index`` at ``location`` (season by hemisphere, solar time by longitude)."""
    utc_ns = index.as_unit("ns").asi8
    wall_ns = index.tz_localize(None).as_unit("ns").asi8
    day_number = np.floor_divide(wall_ns, DAY_NS)
    wall_hour = (wall_ns - day_number * DAY_NS) / HOUR_NS
    weekday = (day_number + 3) % 7  # 1970-01-01 was a Thursday
    year_fraction = (utc_ns / DAY_NS / YEAR_DAYS) % 1.0
    winter_peak = MID_JANUARY if location.latitude_deg >= 0 else MID_JANUARY + 0.5
    season = 0.5 - 0.5 * np.cos(2 * np.pi * (year_fraction - winter_peak))
    solar_hour = ((utc_ns % DAY_NS) / HOUR_NS + location.longitude_deg / 15.0) % 24.0
    step_s = float((utc_ns[1] - utc_ns[0]) / 1e9) if len(utc_ns) > 1 else 900.0
    return Calendar(utc_ns, wall_ns, wall_hour, weekday, day_number - day_number[0], year_fraction, season,
                  solar_hour, step_s)


def seasonal_blend(winter: float, summer: float, season: np.ndarray) -> np.ndarray:
    """Blend of a mid-January and a mid-July value by ``season`` (0 .. 1)."""
    return winter + (summer - winter) * season


def mid_month_nodes() -> np.ndarray:
    """Year fractions of the middle of each month, Jan..Dec."""
    return (np.arange(12) + 0.5) / 12.0


@functools.cache
def _monthly_mean_matrix() -> np.ndarray:
    """A[m, j]: mean over month m of the periodic linear hat function centred on month j."""
    grid = (np.arange(12 * 100) + 0.5) / 1200.0
    nodes = mid_month_nodes()
    basis = np.stack([np.interp(grid, nodes, np.eye(12)[j], period=1.0) for j in range(12)], axis=1)
    return basis.reshape(12, 100, 12).mean(axis=1)


def seasonal_curve(year_fraction: np.ndarray, monthly_means: tuple[float, ...]) -> np.ndarray:
    """Smooth periodic curve whose average over each month equals ``monthly_means`` (Jan..Dec).

    Linear interpolation between mid-month nodes, with node values solved so that monthly
    averages are preserved (plain interpolation through the means would flatten the extremes).
    """
    nodes = np.linalg.solve(_monthly_mean_matrix(), np.asarray(monthly_means, dtype=float))
    return np.interp(year_fraction, mid_month_nodes(), nodes, period=1.0)
