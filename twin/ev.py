"""EV charger and the connected car: charging power and car energy. Pure functions."""

from __future__ import annotations

import math

import numpy as np

from twin.config import EvChargerConfig


def charger_power_kw(requested_kw: float | None, car_energy_kwh: float, limit_kwh: float,
                     c: EvChargerConfig) -> float:
    """AC power the charger draws with a car connected.

    ``None`` is the charger's own behaviour (full power). 0 stops. A request below the
    minimum power cannot be served and stops charging (rounding down is the safe side);
    above the maximum it is capped. A car at its charge limit draws nothing.
    """
    if car_energy_kwh >= limit_kwh - 1e-9:
        return 0.0
    if requested_kw is None:
        return c.max_power_kw
    if requested_kw < c.min_power_kw - 1e-9:
        return 0.0
    return min(requested_kw, c.max_power_kw)


def time_to_full_s(car_energy_kwh: float, limit_kwh: float, power_kw: float, c: EvChargerConfig) -> float:
    """Seconds until the car reaches its charge limit at constant AC ``power_kw``; ``inf`` when not charging."""
    if power_kw <= 0.0:
        return math.inf
    return max(0.0, (limit_kwh - car_energy_kwh) * 3600.0 / (power_kw * c.efficiency))


# --- vectorised siblings: the same rules over a leading axis of chargers (numpy arrays) -------------

def charger_power_kw_v(requested_kw: np.ndarray, car_energy_kwh: np.ndarray, limit_kwh: np.ndarray,
                       c: EvChargerConfig) -> np.ndarray:
    """:func:`charger_power_kw` element-wise; a NaN request is ``None`` (the charger's own behaviour)."""
    served = np.where(requested_kw < c.min_power_kw - 1e-9, 0.0, np.minimum(requested_kw, c.max_power_kw))
    np.copyto(served, c.max_power_kw, where=np.isnan(requested_kw))
    np.copyto(served, 0.0, where=car_energy_kwh >= limit_kwh - 1e-9)
    return served


def time_to_full_s_v(car_energy_kwh: np.ndarray, limit_kwh: np.ndarray, power_kw: np.ndarray,
                     c: EvChargerConfig, charging: np.ndarray | None = None) -> np.ndarray:
    """:func:`time_to_full_s` element-wise [s]; ``inf`` where not charging.

    ``charging`` is ``power_kw > 0`` when the caller has it already.
    """
    dt = np.full_like(car_energy_kwh, np.inf)
    np.divide((limit_kwh - car_energy_kwh) * 3600.0, power_kw * c.efficiency, out=dt,
              where=power_kw > 0.0 if charging is None else charging)
    out: np.ndarray = np.maximum(0.0, dt)
    return out
