"""What to assume when no feed and no learned forecaster answers: seasonal and daily shapes.

Deliberately plain (and documented as such in ``docs/feeds.md``): a central-European temperature
curve (annual mean 9.5 °C, ±10 K over the year, coldest mid-January; ±4 K over the day, warmest
at 15:00), half of pvlib's clear-sky irradiance split into direct and diffuse by Erbs, 60 %
cloud cover, and a two-peak household load shape. They keep the controller planning with
*plausible* inputs — never zeros — and every value they give is marked as a fallback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from twin.config import Location

CLEARNESS = 0.5  # a climatological fraction of clear-sky GHI for central Europe
CLOUD_COVER_PCT = 60.0
# Share of a day's household energy per local hour (sums to 1): night base, morning and evening peaks.
_LOAD_SHAPE = np.array([2.6, 2.3, 2.2, 2.2, 2.3, 3.0, 4.6, 5.6, 4.8, 4.0, 3.8, 4.0,
                        4.4, 4.0, 3.7, 3.8, 4.5, 5.8, 7.0, 7.2, 6.4, 5.2, 4.0, 3.1])
_LOAD_SHAPE = _LOAD_SHAPE / _LOAD_SHAPE.sum()


def temperature_c(times: pd.DatetimeIndex, tz: str) -> np.ndarray:
    local = times.tz_convert(tz)
    day_of_year = local.dayofyear.to_numpy(dtype=float)
    hour = (local.hour + local.minute / 60.0).to_numpy(dtype=float)
    annual = 9.5 - 10.0 * np.cos(2 * np.pi * (day_of_year - 15.0) / 365.25)
    daily = 4.0 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
    return annual + daily


def irradiance_w_m2(times: pd.DatetimeIndex, location: Location) -> pd.DataFrame:
    """``ghi_w_m2``, ``dni_w_m2``, ``dhi_w_m2`` at ``times``: climatological share of clear sky."""
    site = pvlib.location.Location(location.latitude_deg, location.longitude_deg, location.timezone,
                                   location.altitude_m)
    clear = site.get_clearsky(times, model="ineichen")
    ghi = clear["ghi"].to_numpy(dtype=float) * CLEARNESS
    solpos = site.get_solarposition(times)
    split = pvlib.irradiance.erbs(ghi, solpos["zenith"].to_numpy(dtype=float), times)
    return pd.DataFrame({"ghi_w_m2": ghi, "dni_w_m2": np.nan_to_num(np.asarray(split["dni"], dtype=float)),
                         "dhi_w_m2": np.nan_to_num(np.asarray(split["dhi"], dtype=float))}, index=times)


def clear_sky_w_m2(times: pd.DatetimeIndex, location: Location) -> pd.DataFrame:
    site = pvlib.location.Location(location.latitude_deg, location.longitude_deg, location.timezone,
                                   location.altitude_m)
    clear = site.get_clearsky(times, model="ineichen")
    return pd.DataFrame({"ghi_w_m2": clear["ghi"].to_numpy(float), "dni_w_m2": clear["dni"].to_numpy(float),
                         "dhi_w_m2": clear["dhi"].to_numpy(float)}, index=times)


def base_load_kw(times: pd.DatetimeIndex, tz: str, kwh_per_day: float) -> np.ndarray:
    """Mean household load [kW] in each step from a daily energy and the hourly shape."""
    hour = times.tz_convert(tz).hour.to_numpy()
    return _LOAD_SHAPE[hour] * kwh_per_day  # share of a day's kWh in one hour = mean kW in that hour
