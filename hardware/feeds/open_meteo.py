"""Open-Meteo weather forecast: temperature, irradiance (GHI, DNI, DHI) and cloud cover.

Asked with ``timeformat=unixtime`` (local ISO times are ambiguous over DST). An ISO-time answer
is read too, placed with the answer's ``utc_offset_seconds``. ``*_instant`` radiation is the value
at the time stamp; the non-instant hourly variables are means over the preceding hour and are
shifted to their interval's start. Units are checked: an answer in °F or kW/m² is a defect.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from hardware.feeds.http import FeedError

FEED = "weather (Open-Meteo)"
DEFAULT_URL = "https://api.open-meteo.com/v1/forecast"
VARIABLES = {  # our column: (minutely_15 name, hourly name, unit)
    "temp_c": ("temperature_2m", "temperature_2m", "°C"),
    "ghi_w_m2": ("shortwave_radiation_instant", "shortwave_radiation_instant", "W/m²"),
    "dni_w_m2": ("direct_normal_irradiance_instant", "direct_normal_irradiance_instant", "W/m²"),
    "dhi_w_m2": ("diffuse_radiation_instant", "diffuse_radiation_instant", "W/m²"),
    "cloud_cover_pct": ("cloud_cover", "cloud_cover", "%"),
}
LIMITS = {"temp_c": (-60.0, 60.0), "ghi_w_m2": (0.0, 1500.0), "dni_w_m2": (0.0, 1500.0),
          "dhi_w_m2": (0.0, 1000.0), "cloud_cover_pct": (0.0, 100.0)}


def request_params(latitude: float, longitude: float, resolution: str, forecast_days: int) -> dict[str, Any]:
    names = [v[0] if resolution == "minutely_15" else v[1] for v in VARIABLES.values()]
    return {"latitude": f"{latitude:.4f}", "longitude": f"{longitude:.4f}", resolution: ",".join(names),
            "timeformat": "unixtime", "timezone": "UTC", "forecast_days": forecast_days, "past_days": 1}


def _times(raw: list[Any], utc_offset_s: int) -> pd.DatetimeIndex:
    if all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        return pd.DatetimeIndex(pd.to_datetime(raw, unit="s", utc=True))
    if all(isinstance(t, str) for t in raw):
        local = pd.to_datetime(raw, format="%Y-%m-%dT%H:%M")
        return pd.DatetimeIndex(local - pd.Timedelta(seconds=utc_offset_s)).tz_localize("UTC")
    raise ValueError("time values are neither all epoch seconds nor all ISO texts")


def parse_forecast(text: str) -> pd.DataFrame:
    """The forecast as a frame indexed by UTC time with ``temp_c``, ``ghi_w_m2``, ``dni_w_m2``,
    ``dhi_w_m2``, ``cloud_cover_pct``; trailing steps with missing values are cut (the provider's
    horizon ends at different times per variable). Raises :class:`FeedError` naming the defect."""
    try:
        data = json.loads(text, parse_constant=lambda c: float("nan"))
    except ValueError as exc:
        raise FeedError(FEED, f"malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FeedError(FEED, "the answer is not a JSON object")
    if "error" in data and data.get("error"):
        raise FeedError(FEED, f"error answer: {str(data.get('reason', ''))[:200]}")
    block_name = "minutely_15" if isinstance(data.get("minutely_15"), dict) else "hourly"
    block, units = data.get(block_name), data.get(f"{block_name}_units", {})
    if not isinstance(block, dict) or not isinstance(units, dict):
        raise FeedError(FEED, "no minutely_15 or hourly block")
    try:
        offset = int(data.get("utc_offset_seconds", 0))
        times = _times(block["time"], offset)
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedError(FEED, f"unusable time axis ({exc})") from None
    if len(times) < 2 or not times.is_monotonic_increasing or times.has_duplicates:
        raise FeedError(FEED, "time axis is not strictly increasing (duplicated or unordered steps)")
    times = times.as_unit("ns")
    steps = np.diff(times.asi8)
    if not np.all(steps == steps[0]) or steps[0] not in (900 * 10**9, 3600 * 10**9):
        raise FeedError(FEED, "time axis has gaps or is not on a 15-min/hourly grid")
    columns: dict[str, np.ndarray] = {}
    for column, (q15, hourly, unit) in VARIABLES.items():
        name = q15 if block_name == "minutely_15" else hourly
        if name not in block and block_name == "hourly" and name.endswith("_instant"):
            name = name.removesuffix("_instant")  # hourly means: shifted to the interval start below
        if name not in block:
            raise FeedError(FEED, f"variable {name} missing")
        if units.get(name) != unit:
            raise FeedError(FEED, f"{name} in {units.get(name)!r}, expected {unit!r}")
        values = block[name]
        if not isinstance(values, list) or len(values) != len(times):
            raise FeedError(FEED, f"{name} has {len(values) if isinstance(values, list) else '?'} values "
                                  f"for {len(times)} times")
        try:
            array = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
        except (TypeError, ValueError):
            raise FeedError(FEED, f"{name} holds non-numbers") from None
        if name.startswith(("shortwave_radiation", "direct_normal", "diffuse_radiation")) \
                and not name.endswith("_instant"):
            array = np.concatenate([array[1:], [math.nan]])  # mean over the preceding hour → its start
        lo, hi = LIMITS[column]
        finite = array[np.isfinite(array)]
        if finite.size and (finite.min() < lo - 1e-6 or finite.max() > hi + 1e-6):
            raise FeedError(FEED, f"{name} outside {lo:g} … {hi:g} {unit} (wrong units?)")
        columns[column] = array
    frame = pd.DataFrame(columns, index=times)
    complete = frame.notna().all(axis=1).to_numpy()
    if not complete.any():
        raise FeedError(FEED, "no step has every variable")
    first, last = int(np.argmax(complete)), len(complete) - int(np.argmax(complete[::-1]))
    if not complete[first:last].all():
        raise FeedError(FEED, f"{int((~complete[first:last]).sum())} missing value(s) inside the horizon")
    return frame.iloc[first:last]
