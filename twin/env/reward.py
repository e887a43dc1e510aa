"""Reward and KPI increments of one environment step, from the twin's own metering.

The increments are the run log's quantities for one interval (``twin.runlog``): energies and
cost from :meth:`SimHouse.take_interval`'s meter, discomfort as the trapezoid of the distance
outside the comfort band observed at the step's start (as ``twin.runlog.discomfort_kh``), so the
sums over an episode equal the KPIs of the same run through ``twin.runner.simulate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.contracts import Observation
from twin.house import IntervalRecord

#: Keys of ``info`` after every step (KPI increments of that step).
INCREMENT_KEYS = (
    "cost", "import_kwh", "export_kwh", "pv_kwh", "pv_curtailed_kwh", "base_load_kwh", "heating_kwh", "ev_kwh",
    "battery_charge_kwh", "battery_discharge_kwh", "discomfort_kh", "ev_unmet_kwh", "relay_switches",
    "grid_limit_violation_kwh",
)


@dataclass(frozen=True, slots=True)
class RewardWeights:
    """``reward = −(cost + comfort_per_kh · discomfort_kh + ev_shortfall_per_kwh · ev_unmet_kwh)``.

    ``comfort_per_kh`` [currency/(K·h)] prices one kelvin-hour outside a room's comfort band;
    ``ev_shortfall_per_kwh`` [currency/kWh] prices each kWh the car lacks at departure.
    """

    comfort_per_kh: float = 1.0
    ev_shortfall_per_kwh: float = 1.0

    def __post_init__(self) -> None:
        for name in ("comfort_per_kh", "ev_shortfall_per_kwh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and 0.0 <= value <= 1e6):
                raise ValueError(f"{name} = {value!r} must be a number in [0, 1e6]")

    def reward(self, increments: dict[str, float]) -> float:
        return -(increments["cost"] + self.comfort_per_kh * increments["discomfort_kh"]
                 + self.ev_shortfall_per_kwh * increments["ev_unmet_kwh"])


def step_increments(start: Observation, record: IntervalRecord) -> dict[str, float]:
    """KPI increments of the interval ``record`` that began with observation ``start``."""
    m = record.meter
    return {
        "cost": m.cost, "import_kwh": m.import_kwh, "export_kwh": m.export_kwh, "pv_kwh": m.pv_kwh,
        "pv_curtailed_kwh": m.pv_curtailed_kwh, "base_load_kwh": m.base_load_kwh, "heating_kwh": m.heating_kwh,
        "ev_kwh": m.ev_kwh, "battery_charge_kwh": m.battery_charge_kwh,
        "battery_discharge_kwh": m.battery_discharge_kwh,
        "discomfort_kh": interval_discomfort_kh(start.room_temp_c, record.room_temp_c, start.comfort_lower_c,
                                                start.comfort_upper_c, record.end_s - record.start_s),
        "ev_unmet_kwh": m.ev_unmet_kwh, "relay_switches": int(m.relay_switches_room.sum()),
        "grid_limit_violation_kwh": m.grid_limit_violation_kwh,
    }


def interval_discomfort_kh(start_temp_c: np.ndarray, end_temp_c: np.ndarray, lower_c: np.ndarray,
                           upper_c: np.ndarray, duration_s: float) -> float:
    """Σ rooms of :func:`twin.runlog.discomfort_kh` for one interval [K·h] (same trapezoid, 1-D and faster)."""
    if not len(start_temp_c):
        return 0.0
    outside = (np.maximum(np.maximum(lower_c - start_temp_c, start_temp_c - upper_c), 0.0)
               + np.maximum(np.maximum(lower_c - end_temp_c, end_temp_c - upper_c), 0.0))
    return float(outside.sum()) * (duration_s / 7200.0)


def interval_discomfort_kh_v(start_temp_c: np.ndarray, end_temp_c: np.ndarray, lower_c: np.ndarray,
                             upper_c: np.ndarray, duration_s: np.ndarray) -> np.ndarray:
    """:func:`interval_discomfort_kh` of many houses [K·h].

    ``(houses, rooms)`` temperatures and bands, ``(houses,)`` durations [s] → ``(houses,)``.
    """
    if not start_temp_c.shape[1]:
        return np.zeros(len(duration_s))
    outside = (np.maximum(np.maximum(lower_c - start_temp_c, start_temp_c - upper_c), 0.0)
               + np.maximum(np.maximum(lower_c - end_temp_c, end_temp_c - upper_c), 0.0))
    discomfort: np.ndarray = outside.sum(axis=1) * (duration_s / 7200.0)
    return discomfort
