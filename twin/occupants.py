"""What the people in the house and the rooms' own thermostats do: pure rules, no state.

:class:`~twin.house.SimHouse` applies them at each data point (windows, blinds) and at each
thermostat tick (relays while no lease holds).
"""

from __future__ import annotations

import numpy as np

from twin.config import OccupantConfig


def windows_open_next(open_now: bool, mean_air_c: float, outdoor_c: float, occ: OccupantConfig) -> bool:
    """Air the house when it is too warm and cooler outside; close again when it has cooled."""
    if open_now:
        return mean_air_c > occ.window_close_below_c and outdoor_c < mean_air_c
    return mean_air_c > occ.window_open_above_c and outdoor_c <= mean_air_c - occ.window_min_outdoor_delta_c


def blinds_down_next(air_c: np.ndarray, upper_c: np.ndarray, down_now: np.ndarray, occ: OccupantConfig) -> np.ndarray:
    """Per room: lower the blinds near the comfort upper bound, raise them once well below it."""
    return (air_c > upper_c - occ.blinds_down_margin_c) | (down_now & (air_c > upper_c - occ.blinds_up_margin_c))


def thermostat_relays(air_c: np.ndarray, lower_c: np.ndarray, relay_on: np.ndarray, on_below_c: float,
                      off_above_c: float) -> np.ndarray:
    """Each room's thermostat: hysteresis around its comfort lower bound (offsets relative to it)."""
    return (air_c < lower_c + on_below_c) | (relay_on & (air_c <= lower_c + off_above_c))


def windows_open_next_v(open_now: np.ndarray, mean_air_c: np.ndarray, outdoor_c: np.ndarray,
                        occ: OccupantConfig) -> np.ndarray:
    """:func:`windows_open_next` over a leading axis of houses.

    (``blinds_down_next`` and ``thermostat_relays`` are element-wise already and take such arrays as they are.)
    """
    keep_open = (mean_air_c > occ.window_close_below_c) & (outdoor_c < mean_air_c)
    open_up = (mean_air_c > occ.window_open_above_c) & (outdoor_c <= mean_air_c - occ.window_min_outdoor_delta_c)
    out: np.ndarray = np.where(open_now, keep_open, open_up)
    return out
