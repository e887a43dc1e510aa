"""Rooftop PV and solar gains through windows, composed from pvlib's functions.

The chain per array is pvlib's PVWatts one: solar position → Hay–Davies transposition →
SAPM cell temperature → PVWatts DC (with a lumped system loss) → PVWatts inverter, capped
at the inverter's AC rating. Irradiance values are interval means, so the sun is placed at
each interval's midpoint.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pvlib

from twin.config import Location, PvArrayConfig, RoomConfig

# pvlib 0.16 still calls DatetimeIndex.dayofyear, which pandas 3 deprecates; harmless here.
warnings.filterwarnings("ignore", message=r".*dayofyear is deprecated", module=r"pvlib\..*")


def solar_position(times: pd.DatetimeIndex, location: Location,
                   temp_air_c: np.ndarray | float = 12.0) -> pd.DataFrame:
    """pvlib solar position (``apparent_zenith``, ``azimuth`` … [deg]) at ``times``.

    ``temp_air_c`` [°C] enters the refraction correction, as in pvlib's ModelChain.
    """
    solpos: pd.DataFrame = pvlib.solarposition.get_solarposition(
        times, location.latitude_deg, location.longitude_deg, altitude=location.altitude_m,
        temperature=temp_air_c)
    return solpos


def plane_irradiance_w_m2(tilt_deg: float, azimuth_deg: float, solpos: pd.DataFrame, dni: np.ndarray,
                          ghi: np.ndarray, dhi: np.ndarray, dni_extra: np.ndarray, albedo: float) -> np.ndarray:
    """Total irradiance on a plane [W/m²] (Hay–Davies sky diffuse)."""
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg, azimuth_deg, solpos["apparent_zenith"].to_numpy(), solpos["azimuth"].to_numpy(),
        dni, ghi, dhi, dni_extra=dni_extra, albedo=albedo, model="haydavies")
    poa_global: np.ndarray = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float), nan=0.0).clip(min=0.0)
    return poa_global


def array_ac_power_kw(poa_w_m2: np.ndarray, temp_air_c: np.ndarray, wind_speed_m_s: np.ndarray,
                      array: PvArrayConfig) -> np.ndarray:
    """AC power of one array [kW] from its plane-of-array irradiance (pure pvlib PVWatts)."""
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][array.mount]
    temp_cell = pvlib.temperature.sapm_cell(poa_w_m2, temp_air_c, wind_speed_m_s, **params)
    pdc0_w = array.peak_power_kw * 1000.0
    pdc = pvlib.pvsystem.pvwatts_dc(poa_w_m2, temp_cell, pdc0_w, array.gamma_pdc_per_c)
    pdc = np.asarray(pdc) * (1.0 - array.system_loss_fraction)
    # PVWatts' inverter caps at pdc0 × η_nom; choosing pdc0 = AC rating / η_nom caps at the AC rating.
    eta = array.inverter_nominal_efficiency
    pac = pvlib.inverter.pvwatts(pdc, array.inverter_ac_kw * 1000.0 / eta, eta_inv_nom=eta)
    return np.clip(np.asarray(pac, dtype=float) / 1000.0, 0.0, array.inverter_ac_kw)


def interval_solar_position(times: pd.DatetimeIndex, step_s: float, weather: pd.DataFrame,
                            location: Location) -> pd.DataFrame:
    """Solar position at the middle of each ``step_s`` interval from ``times`` (``weather``'s air temperature)."""
    mid = times + pd.Timedelta(seconds=step_s / 2)
    return solar_position(mid, location, weather["outdoor_temp_c"].to_numpy(dtype=float))


def pv_ac_power_kw(times: pd.DatetimeIndex, step_s: float, weather: pd.DataFrame, location: Location,
                   arrays: Sequence[PvArrayConfig], solpos: pd.DataFrame | None = None) -> np.ndarray:
    """Interval-mean AC power of all arrays [kW] for weather rows starting at ``times``.

    ``weather`` has ``ghi_w_m2``, ``dni_w_m2``, ``dhi_w_m2``, ``outdoor_temp_c`` and
    optionally ``wind_speed_m_s`` (default 1 m/s). ``solpos`` is
    :func:`interval_solar_position` of the same arguments when the caller has it already.
    """
    total = np.zeros(len(times))
    if not arrays:
        return total
    mid = times + pd.Timedelta(seconds=step_s / 2)
    temp = weather["outdoor_temp_c"].to_numpy(dtype=float)
    if solpos is None:
        solpos = solar_position(mid, location, temp)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(mid), dtype=float)
    ghi, dni, dhi = (weather[c].to_numpy(dtype=float) for c in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"))
    wind = (weather["wind_speed_m_s"].to_numpy(dtype=float) if "wind_speed_m_s" in weather
            else np.ones(len(times)))
    for array in arrays:
        poa = plane_irradiance_w_m2(array.tilt_deg, array.azimuth_deg, solpos, dni, ghi, dhi, dni_extra, array.albedo)
        total += array_ac_power_kw(poa, temp, wind, array)
    return total


def window_solar_gains_w(times: pd.DatetimeIndex, step_s: float, weather: pd.DataFrame, location: Location,
                         rooms: Sequence[RoomConfig], albedo: float = 0.2,
                         solpos: pd.DataFrame | None = None) -> np.ndarray:
    """Solar heat gain of every room [W], shape (steps, rooms): vertical-window irradiance × aperture.

    ``solpos`` is :func:`interval_solar_position` of the same arguments when the caller has it already.
    """
    gains = np.zeros((len(times), len(rooms)))
    if not rooms or not any(r.solar_aperture_m2 > 0 for r in rooms):
        return gains
    mid = times + pd.Timedelta(seconds=step_s / 2)
    if solpos is None:
        solpos = solar_position(mid, location, weather["outdoor_temp_c"].to_numpy(dtype=float))
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(mid), dtype=float)
    ghi, dni, dhi = (weather[c].to_numpy(dtype=float) for c in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"))
    by_azimuth: dict[float, np.ndarray] = {}
    for j, room in enumerate(rooms):
        if room.solar_aperture_m2 <= 0:
            continue
        if room.window_azimuth_deg not in by_azimuth:
            by_azimuth[room.window_azimuth_deg] = plane_irradiance_w_m2(
                90.0, room.window_azimuth_deg, solpos, dni, ghi, dhi, dni_extra, albedo)
        gains[:, j] = by_azimuth[room.window_azimuth_deg] * room.solar_aperture_m2
    return gains
