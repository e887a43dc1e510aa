"""A known two-room RC network and seeded measurements from it, for identification and filter tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from controllers.estimation.identify import ThermalData, simulate_rc
from twin.config import Coupling, RoomConfig

TRUE_ROOMS = [
    RoomConfig(name="south", heater_power_kw=1.5, air_capacitance_j_per_k=4e5, outdoor_conductance_w_per_k=25.0,
               mass_capacitance_j_per_k=8e6, air_mass_conductance_w_per_k=150.0,
               mass_outdoor_conductance_w_per_k=8.0, solar_aperture_m2=1.5, window_azimuth_deg=180.0),
    RoomConfig(name="north", heater_power_kw=1.0, air_capacitance_j_per_k=3e5, outdoor_conductance_w_per_k=15.0,
               mass_capacitance_j_per_k=5e6, air_mass_conductance_w_per_k=100.0,
               mass_outdoor_conductance_w_per_k=5.0, solar_aperture_m2=0.3, window_azimuth_deg=180.0),
]
TRUE_COUPLINGS = [Coupling(("south", "north"), 40.0)]


def synthetic_measurements(days: float = 8.0, seed: int = 0, noise_c: float = 0.02) -> tuple[ThermalData, np.ndarray]:
    """10-min data from the true network: pseudo-random heater pulses, a weather-like outdoor cycle."""
    rng = np.random.default_rng(seed)
    n = int(days * 144)
    times = pd.date_range("2024-02-01", periods=n, freq="10min", tz="Europe/Prague")
    hour = times.hour + times.minute / 60
    outdoor = 3 + 4 * np.sin(2 * np.pi * (hour - 9) / 24) + np.cumsum(rng.normal(0, 0.05, n))
    sun = np.clip(np.sin(np.pi * (hour - 7) / 10), 0, None) * 400 * rng.uniform(0.3, 1.0, n // 144 + 1)[
        np.arange(n) // 144]
    pulses = (rng.random((n // 18 + 1, 2)) < 0.4).repeat(18, axis=0)[:n]  # 3-hour on/off blocks
    heater = pulses * np.array([1500.0, 1000.0])
    data = ThermalData(times, 600.0, ("south", "north"), np.zeros((n, 2)), heater, outdoor,
                       np.column_stack([sun, sun]), np.ones(2, bool), np.array([1.5, 1.0]))
    nodes = simulate_rc(TRUE_ROOMS, TRUE_COUPLINGS, data, np.array([20.0, 19.0, 18.0, 17.5]))
    air = nodes[:, :2] + rng.normal(0, noise_c, (n, 2))
    return ThermalData(times, 600.0, data.rooms, air, heater, outdoor, data.facade_w_m2, data.has_heater,
                       data.max_heater_kw), nodes
