"""Seeded synthetic histories for forecaster tests: a household load and a PV system with known structure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from controllers.forecasting.solar import PvSite, clear_sky_pv_kw
from twin.config import Location, PvArrayConfig

PARIS = Location(latitude_deg=48.85, longitude_deg=2.35, timezone="Europe/Paris", altitude_m=50.0)
SITE = PvSite(PARIS, (PvArrayConfig(name="roof", peak_power_kw=4.0, tilt_deg=35.0, azimuth_deg=180.0,
                                    inverter_ac_kw=4.0),), capacity_kw=4.0)


def load_history(days: int = 35, step_min: int = 60, seed: int = 0, start: str = "2024-05-01") -> pd.DataFrame:
    """Evening-peaked daily profile, higher at weekends, + AR(1) noise; outdoor temperature alongside."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(pd.Timestamp(start, tz="Europe/Paris"), periods=days * 24 * 60 // step_min,
                          freq=f"{step_min}min")
    hour = index.hour + index.minute / 60
    profile = 0.3 + 0.5 * np.exp(-((hour - 19.5) ** 2) / 4.0) + 0.3 * np.exp(-((hour - 7.5) ** 2) / 2.0)
    weekend = np.where(index.day_of_week >= 5, 1.3, 1.0)
    noise = np.zeros(len(index))
    for i in range(1, len(index)):
        noise[i] = 0.7 * noise[i - 1] + rng.normal(0, 0.08)
    load = np.clip(profile * weekend + noise, 0.05, None)
    temp = 15 + 5 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 0.5, len(index))
    return pd.DataFrame({"base_load_kw": load, "outdoor_temp_c": temp}, index=index)


def pv_history(days: int = 30, step_min: int = 60, seed: int = 0, start: str = "2024-06-01") -> pd.DataFrame:
    """Clear-sky output × a daily clear-sky index that persists from day to day (AR(1))."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(pd.Timestamp(start, tz="Europe/Paris"), periods=days * 24 * 60 // step_min,
                          freq=f"{step_min}min")
    clear = clear_sky_pv_kw(index, step_min * 60.0, SITE)
    daily = np.empty(days)
    daily[0] = 0.7
    for d in range(1, days):
        daily[d] = np.clip(0.7 + 0.6 * (daily[d - 1] - 0.7) + rng.normal(0, 0.15), 0.1, 1.0)
    kc = np.repeat(daily, 24 * 60 // step_min)
    return pd.DataFrame({"pv_power_kw": clear * kc}, index=index)


def price_history(days: int = 30, seed: int = 0, start: str = "2024-04-01") -> pd.DataFrame:
    """Hourly prices: morning and evening peaks, cheaper weekends, a slow level drift."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(pd.Timestamp(start, tz="Europe/Prague"), periods=days * 24, freq="h")
    hour = index.hour
    shape = 0.08 + 0.05 * np.exp(-((hour - 8) ** 2) / 3) + 0.07 * np.exp(-((hour - 19) ** 2) / 3)
    level = 1 + 0.2 * np.sin(np.arange(len(index)) / (24 * 9))
    price = shape * level * np.where(index.day_of_week >= 5, 0.8, 1.0) + rng.normal(0, 0.005, len(index))
    return pd.DataFrame({"import_price_per_kwh": price}, index=index)
