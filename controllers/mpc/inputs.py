"""What one solve needs, as plain arrays on the block grid: built from an Observation.

Everything the optimisation model reads changes here, between solves; the model itself is
built once (``controllers.mpc.model``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from controllers.mpc.blocking import BlockGrid, block_means, values_at
from controllers.mpc.rc_model import RcModel
from twin.config import HouseConfig
from twin.contracts import Observation
from twin.errors import TwinError
from twin.pv import window_solar_gains_w
from twin.scenario import COLUMN_RANGES


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """Inputs of one solve.

    Per-block arrays have ``n_blocks`` rows; comfort bands hold at the end of each block
    (boundaries 1..n).
    """

    start: datetime
    outdoor_c: np.ndarray  # (blocks,) [°C]
    pv_kw: np.ndarray  # (blocks,) [kW]
    base_load_kw: np.ndarray  # (blocks,) [kW]
    import_price_per_kwh: np.ndarray  # (blocks,)
    export_price_per_kwh: np.ndarray  # (blocks,)
    node_gains_w: np.ndarray  # (blocks, nodes) solar + internal [W]
    comfort_lower_c: np.ndarray  # (blocks, rooms) at each block's end
    comfort_upper_c: np.ndarray  # (blocks, rooms)
    initial_temps_c: np.ndarray  # (nodes,)
    battery_kwh: float  # energy in the battery now, inside its SOC window [kWh]
    ev_fraction: np.ndarray  # (blocks,) share of each block the car is still connected
    ev_need_kwh: float  # energy the car still needs for its target [kWh]
    terminal_price_per_kwh: float  # what stored energy is worth at the horizon's end

    @property
    def n_blocks(self) -> int:
        return len(self.outdoor_c)


class SolarGains:
    """Window solar gains per data step, computed once per forecast issue (pvlib)."""

    def __init__(self, house: HouseConfig) -> None:
        self.house = house
        self._key: tuple[object, ...] | None = None
        self._value: np.ndarray | None = None

    def __call__(self, frame: pd.DataFrame, step_s: float) -> np.ndarray:
        key = (frame.index[0], len(frame), step_s, hash(frame[["ghi_w_m2", "dni_w_m2", "dhi_w_m2"]].to_numpy()
                                                        .tobytes()))
        if key != self._key:
            self._value = window_solar_gains_w(pd.DatetimeIndex(frame.index), step_s, frame, self.house.location,
                                               self.house.rooms)
            self._key = key
        assert self._value is not None
        return self._value


class ForecastError(TwinError):
    """The forecast cannot be planned on (missing or non-finite values)."""


def _plausible(frame: pd.DataFrame, house: HouseConfig) -> pd.DataFrame:
    """The forecast clipped to what is physically possible (a forecast error model may overshoot).

    Raises :class:`ForecastError` when a value is missing: planning on a guess would be worse
    than the controller's fallback chain.
    """
    bad = [c for c in frame.columns if not np.isfinite(frame[c].to_numpy(dtype=float)).all()]
    if bad:
        raise ForecastError(f"forecast issued at {frame.index[0]} has missing values in {bad}")
    frame = frame.copy()
    for column in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "outdoor_temp_c", "base_load_kw"):
        lo, hi = COLUMN_RANGES[column]
        frame[column] = frame[column].clip(lo, hi)
    ac_kw = sum(a.inverter_ac_kw for a in house.pv_arrays)
    frame["pv_power_kw"] = frame["pv_power_kw"].clip(0.0, ac_kw)
    return frame


def ev_fraction(grid: BlockGrid, departure_in_s: float) -> np.ndarray:
    """Share of each block before the car leaves ``departure_in_s`` seconds from now."""
    lo, hi = grid.edges_s[:-1], grid.edges_s[1:]
    share: np.ndarray = np.clip((departure_in_s - lo) / (hi - lo), 0.0, 1.0)
    return share


def rounded_measurements(obs: Observation, decimals: int) -> Observation:
    """``obs`` with its measured values rounded to ``decimals`` (see ``MpcSettings.measurement_decimals``)."""
    return replace(
        obs, room_temp_c=np.round(obs.room_temp_c, decimals), outdoor_temp_c=round(obs.outdoor_temp_c, decimals),
        pv_power_kw=round(obs.pv_power_kw, decimals), base_load_kw=round(obs.base_load_kw, decimals),
        grid_power_kw=round(obs.grid_power_kw, decimals), battery_soc=round(obs.battery_soc, decimals),
        battery_power_kw=round(obs.battery_power_kw, decimals), ev_soc=round(obs.ev_soc, decimals),
        ev_energy_needed_kwh=round(obs.ev_energy_needed_kwh, decimals))


def build_inputs(obs: Observation, house: HouseConfig, grid: BlockGrid, rc: RcModel, initial_temps_c: np.ndarray,
                 solar: SolarGains, battery_kwh_fallback: float | None = None) -> PlanInputs:
    """Average the observation's forecast onto ``grid`` and collect the current state."""
    forecast = obs.forecast
    frame = _plausible(forecast.as_frame(), house)
    step_s = forecast.step_s
    offset_s = obs.time.timestamp() - forecast.start.timestamp()
    edges = grid.edges_s

    def mean(column: str) -> np.ndarray:
        return block_means(frame[column].to_numpy(dtype=float), offset_s, step_s, edges)

    gains_steps = rc.node_gains_w(solar(frame, step_s), frame["base_load_kw"].to_numpy(dtype=float))
    lower_before, lower_after = values_at(forecast.comfort_lower_c, offset_s, step_s, edges[1:])
    upper_before, upper_after = values_at(forecast.comfort_upper_c, offset_s, step_s, edges[1:])
    import_price = mean("import_price_per_kwh")
    durations = grid.durations_h
    terminal = float(import_price @ durations / durations.sum())

    battery_kwh = 0.0
    b = house.battery
    if b is not None:
        soc = obs.battery_soc
        if not math.isfinite(soc) or "battery_soc" in obs.stale:
            battery_kwh = (battery_kwh_fallback if battery_kwh_fallback is not None
                           else 0.5 * (b.soc_min + b.soc_max) * b.capacity_kwh)
        else:
            battery_kwh = soc * b.capacity_kwh
        battery_kwh = min(max(battery_kwh, b.soc_min * b.capacity_kwh), b.soc_max * b.capacity_kwh)

    if obs.ev_connected and obs.ev_departure is not None and house.ev_charger is not None:
        fraction = ev_fraction(grid, obs.ev_departure.timestamp() - obs.time.timestamp())
        need = max(0.0, float(obs.ev_energy_needed_kwh)) if math.isfinite(obs.ev_energy_needed_kwh) else 0.0
    else:
        fraction, need = np.zeros(grid.n_blocks), 0.0

    return PlanInputs(
        start=obs.time,
        outdoor_c=mean("outdoor_temp_c"),
        pv_kw=np.maximum(mean("pv_power_kw"), 0.0),
        base_load_kw=np.maximum(mean("base_load_kw"), 0.0),
        import_price_per_kwh=import_price,
        export_price_per_kwh=mean("export_price_per_kwh"),
        node_gains_w=block_means(gains_steps, offset_s, step_s, edges),
        comfort_lower_c=np.maximum(lower_before, lower_after),
        comfort_upper_c=np.minimum(upper_before, upper_after),
        initial_temps_c=np.asarray(initial_temps_c, dtype=float).copy(),
        battery_kwh=battery_kwh,
        ev_fraction=fraction,
        ev_need_kwh=need,
        terminal_price_per_kwh=terminal,
    )
