"""The scenario turned into plain arrays for one house: what the twin reads in its inner loop.

Built once per run (vectorised pvlib, no pandas afterwards). Every series is padded past the
scenario's end by repeating its last day, so that a forecast horizon always exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.config import HouseConfig
from twin.contracts import FORECAST_FIELDS
from twin.pv import interval_solar_position, pv_ac_power_kw, window_solar_gains_w
from twin.scenario import IRRADIANCE_COLUMNS, Scenario


@dataclass(frozen=True, slots=True)
class Exogenous:
    """Read-only arrays on the scenario grid, ``n_steps + pad_steps`` long."""

    times: pd.DatetimeIndex  # the scenario's own steps (unpadded)
    step_s: float
    n_steps: int
    series: dict[str, np.ndarray]  # FORECAST_FIELDS
    comfort_lower_c: np.ndarray  # (steps, rooms)
    comfort_upper_c: np.ndarray  # (steps, rooms)
    gain_w: np.ndarray  # (steps, nodes): solar + internal heat into each thermal node [W]
    solar_w: np.ndarray  # (steps, rooms): the solar part of it, per room [W]
    solar_node: np.ndarray  # (rooms,): node that receives each room's solar gain
    pv_measured: bool


def _pad(values: np.ndarray, pad_steps: int, day_steps: int) -> np.ndarray:
    """Append ``pad_steps`` rows repeating the last day (or all data if shorter than a day)."""
    if pad_steps <= 0:
        return values
    period = min(day_steps, len(values))
    tail = values[len(values) - period:]
    reps = math.ceil(pad_steps / period)
    extra = np.concatenate([tail] * reps, axis=0)[:pad_steps]
    return np.concatenate([values, extra], axis=0)


def build_exogenous(house: HouseConfig, scenario: Scenario, pad_steps: int, mass_node: np.ndarray,
                    n_nodes: int) -> Exogenous:
    """Arrays the twin needs for ``house`` in ``scenario``; ``mass_node[j]`` is room j's mass node or −1."""
    data = scenario.data
    times = scenario.index
    step_s = scenario.step_s
    n = len(times)
    day_steps = max(1, round(86400 / step_s))
    has_irradiance = all(c in data.columns for c in IRRADIANCE_COLUMNS)

    series: dict[str, np.ndarray] = {}
    for column in ("outdoor_temp_c", "base_load_kw", "import_price_per_kwh", "export_price_per_kwh"):
        series[column] = data[column].to_numpy(dtype=float)
    for column in IRRADIANCE_COLUMNS:
        series[column] = data[column].to_numpy(dtype=float) if has_irradiance else np.zeros(n)
    # One solar position for the PV arrays and the windows (pvlib's SPA is most of a year's set-up).
    pv_measured = "pv_power_kw" in data.columns
    needs_sun = (not pv_measured and bool(house.pv_arrays)) or any(r.solar_aperture_m2 > 0 for r in house.rooms)
    solpos = interval_solar_position(times, step_s, data, house.location) if has_irradiance and needs_sun else None
    if pv_measured:
        series["pv_power_kw"] = data["pv_power_kw"].to_numpy(dtype=float)
    else:
        series["pv_power_kw"] = pv_ac_power_kw(times, step_s, data, house.location, house.pv_arrays, solpos)

    n_rooms = len(house.rooms)
    modes = data["comfort_mode"].to_numpy(dtype=np.intp)
    bands = np.array([[(b.lower_c, b.upper_c) for b in r.comfort.bands()] for r in house.rooms]).reshape(
        n_rooms, 3, 2)
    lower = bands[:, :, 0].T[modes] if n_rooms else np.zeros((n, 0))  # (steps, rooms)
    upper = bands[:, :, 1].T[modes] if n_rooms else np.zeros((n, 0))

    gain = np.zeros((n, n_nodes))
    solar = np.zeros((n, n_rooms))
    solar_node = np.where(mass_node >= 0, mass_node, np.arange(n_rooms))
    if n_rooms:
        if has_irradiance:
            solar = window_solar_gains_w(times, step_s, data, house.location, house.rooms, solpos=solpos)
        shares = np.asarray(house.internal_gain_shares())
        gain[:, :n_rooms] += series["base_load_kw"][:, None] * 1000.0 * shares[None, :]
        for j in range(n_rooms):
            gain[:, solar_node[j]] += solar[:, j]

    def padded(values: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(_pad(values, pad_steps, day_steps))
        out.flags.writeable = False
        return out

    return Exogenous(
        times=times, step_s=step_s, n_steps=n,
        series={k: padded(series[k]) for k in FORECAST_FIELDS},
        comfort_lower_c=padded(lower), comfort_upper_c=padded(upper), gain_w=padded(gain),
        solar_w=padded(solar), solar_node=solar_node, pv_measured=pv_measured,
    )
