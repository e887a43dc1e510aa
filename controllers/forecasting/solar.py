"""The physical part of the PV forecast: pvlib's PVWatts chain (the twin's ``twin.pv``) on a site.

With a weather forecast (GHI/DNI/DHI, air temperature) the physical model is the twin's
own chain; without one it is the clear-sky PV (Ineichen clear sky with pvlib's Linke
turbidity climatology). A site whose orientation is unknown can be fitted to measured PV.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pvlib

from controllers.forecasting.base import ForecastError
from twin.config import HouseConfig, Location, PvArrayConfig
from twin.pv import pv_ac_power_kw


@dataclass(frozen=True, slots=True)
class PvSite:
    """Where the PV is and what it is; ``capacity_kw`` scales errors (defaults to the arrays' kWp)."""

    location: Location
    arrays: tuple[PvArrayConfig, ...]
    capacity_kw: float | None = None

    def __post_init__(self) -> None:
        if not self.arrays:
            raise ForecastError("a PV site needs at least one array")

    @property
    def capacity(self) -> float:
        return self.capacity_kw if self.capacity_kw is not None else sum(a.peak_power_kw for a in self.arrays)

    @classmethod
    def from_house(cls, house: HouseConfig) -> PvSite:
        if not house.pv_arrays:
            raise ForecastError(f"house {house.name!r} has no PV arrays")
        return cls(house.location, house.pv_arrays)

    def to_dict(self) -> dict[str, Any]:
        return {"location": {"latitude_deg": self.location.latitude_deg, "longitude_deg": self.location.longitude_deg,
                             "timezone": self.location.timezone, "altitude_m": self.location.altitude_m},
                "arrays": [{"name": a.name, "peak_power_kw": a.peak_power_kw, "tilt_deg": a.tilt_deg,
                            "azimuth_deg": a.azimuth_deg, "inverter_ac_kw": a.inverter_ac_kw} for a in self.arrays],
                "capacity_kw": self.capacity_kw}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PvSite:
        return cls(Location(**data["location"]), tuple(PvArrayConfig(**a) for a in data["arrays"]),
                   data.get("capacity_kw"))


def solar_geometry(times: pd.DatetimeIndex, step_s: float, location: Location) -> tuple[np.ndarray, np.ndarray]:
    """Apparent elevation and azimuth [deg] at the midpoints of the intervals starting at ``times``."""
    mid = times + pd.Timedelta(seconds=step_s / 2)
    pos = pvlib.solarposition.get_solarposition(mid, location.latitude_deg, location.longitude_deg,
                                                altitude=location.altitude_m)
    return pos["apparent_elevation"].to_numpy(), pos["azimuth"].to_numpy()


@functools.cache
def _monthly_linke_turbidity(latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """pvlib's Linke turbidity climatology at a site, Jan..Dec (read once: the lookup opens a file)."""
    mid_months = pd.DatetimeIndex([f"2021-{m:02d}-15" for m in range(1, 13)], tz="UTC")
    turbidity: np.ndarray = pvlib.clearsky.lookup_linke_turbidity(mid_months, latitude_deg, longitude_deg,
                                                                  interp_turbidity=False).to_numpy()
    return turbidity


def linke_turbidity(times: pd.DatetimeIndex, location: Location) -> pd.Series:
    """Linke turbidity at ``times``, interpolated daily between mid-month values (as pvlib does)."""
    monthly = _monthly_linke_turbidity(location.latitude_deg, location.longitude_deg)
    doy = times.tz_convert("UTC").day_of_year.to_numpy() - 1
    nodes = (np.arange(12) + 0.5) * 365.0 / 12.0
    return pd.Series(np.interp(doy, nodes, monthly, period=365.0), index=times)


def clear_sky_weather(times: pd.DatetimeIndex, step_s: float, location: Location,
                      temp_air_c: np.ndarray | float = 15.0) -> pd.DataFrame:
    """Clear-sky GHI/DNI/DHI [W/m²] (Ineichen, Linke turbidity climatology) at interval midpoints."""
    mid = times + pd.Timedelta(seconds=step_s / 2)
    site = pvlib.location.Location(location.latitude_deg, location.longitude_deg, tz=location.timezone,
                                   altitude=location.altitude_m)
    clear = site.get_clearsky(mid, model="ineichen", linke_turbidity=linke_turbidity(mid, location))
    return pd.DataFrame({"ghi_w_m2": clear["ghi"].to_numpy(), "dni_w_m2": clear["dni"].to_numpy(),
                         "dhi_w_m2": clear["dhi"].to_numpy(),
                         "outdoor_temp_c": np.broadcast_to(temp_air_c, len(times)).astype(float)}, index=times)


def clear_sky_pv_kw(times: pd.DatetimeIndex, step_s: float, site: PvSite,
                    temp_air_c: np.ndarray | float = 15.0) -> np.ndarray:
    """AC power of the site under a clear sky [kW] (interval means)."""
    weather = clear_sky_weather(times, step_s, site.location, temp_air_c)
    return pv_ac_power_kw(times, step_s, weather, site.location, site.arrays)


def weather_pv_kw(times: pd.DatetimeIndex, step_s: float, site: PvSite, weather: pd.DataFrame) -> np.ndarray:
    """AC power of the site for the given (forecast) weather [kW]: the twin's PVWatts chain."""
    missing = [c for c in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "outdoor_temp_c") if c not in weather]
    if missing:
        raise ForecastError(f"weather forecast lacks {missing}")
    return pv_ac_power_kw(times, step_s, weather.reset_index(drop=True).set_axis(times), site.location, site.arrays)


def fit_orientation(pv_kw: pd.Series, location: Location, capacity_kw: float,
                    tilts: tuple[float, ...] = (0, 10, 20, 30, 40, 50, 60),
                    azimuths: tuple[float, ...] = tuple(range(90, 271, 15))) -> PvSite:
    """The single array (tilt, azimuth, size) whose clear-sky output best envelopes measured PV.

    For each candidate orientation the array's size is the 97th percentile of measured /
    clear-sky power; the orientation kept is the one whose scaled clear-sky curve fits the
    clearest intervals (measured ≥ 60 % of it) best. Crude, but enough for a physical
    baseline whose residual the learned model corrects.
    """
    values = pv_kw.to_numpy(dtype=float)
    times = pd.DatetimeIndex(pv_kw.index)
    step_s = float((times[1] - times[0]).total_seconds())
    unit = PvArrayConfig(name="fit", peak_power_kw=1.0, tilt_deg=0.0, azimuth_deg=180.0, inverter_ac_kw=1.0)
    weather = clear_sky_weather(times, step_s, location)
    best: tuple[float, PvArrayConfig] | None = None
    for tilt in tilts:
        for azimuth in azimuths:
            array = replace(unit, tilt_deg=float(tilt), azimuth_deg=float(azimuth), inverter_ac_kw=10.0)
            clear = pv_ac_power_kw(times, step_s, weather, location, (array,))
            lit = (clear > 0.3) & np.isfinite(values)  # high sun only: timing and shade matter less
            if lit.sum() < 100:
                raise ForecastError("too little daylight PV data to fit an orientation")
            size = float(np.quantile(values[lit] / clear[lit], 0.95))
            clearest = lit & (values >= 0.6 * size * clear)
            error = float(np.sqrt(np.mean((values[clearest] - size * clear[clearest]) ** 2)))
            if best is None or error < best[0]:
                best = (error, replace(array, peak_power_kw=round(size, 3), inverter_ac_kw=capacity_kw))
    if best is None:
        raise ForecastError("no orientation to fit (empty tilts or azimuths)")
    return PvSite(location, (best[1],), capacity_kw)
