"""EV charger and the connected car: charging power and car energy. Pure functions."""

from __future__ import annotations

import math

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
