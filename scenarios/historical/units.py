"""Source units and their conversion to the project's canonical units — the one place it happens.

A canonical column name ends in its unit (``base_load_kw``, ``outdoor_temp_c``,
``ghi_w_m2``, ``import_price_per_kwh``, ``wind_speed_m_s``), optionally followed by a
``.qualifier`` (``room_temp_c.living``). The suffix decides which source units are allowed:

=============  ============================================================================
suffix         source units
=============  ============================================================================
``_kw``        ``W``, ``kW``, ``MW`` (interval mean power); ``Wh``, ``kWh`` (energy per
               source interval); ``Wh_meter``, ``kWh_meter`` (cumulative meter readings:
               the difference to the next reading is the interval's energy)
``_c``         ``degC``, ``K``, ``degF``
``_w_m2``      ``W/m2``, ``kW/m2``
``_per_kwh``   ``per_kWh``, ``per_MWh`` (money per energy, any currency)
``_m_s``       ``m/s``, ``km/h``
``comfort_mode``  ``1`` (dimensionless)
=============  ============================================================================
"""

from __future__ import annotations

import re

import numpy as np

#: canonical suffix -> the units a source column may be given in.
UNITS_BY_SUFFIX: dict[str, tuple[str, ...]] = {
    "_kw": ("W", "kW", "MW", "Wh", "kWh", "Wh_meter", "kWh_meter"),
    "_c": ("degC", "K", "degF"),
    "_w_m2": ("W/m2", "kW/m2"),
    "_per_kwh": ("per_kWh", "per_MWh"),
    "_m_s": ("m/s", "km/h"),
}
DIMENSIONLESS = ("comfort_mode",)
CANONICAL_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]{0,31})?$")

_POWER_FACTOR_KW = {"W": 1e-3, "kW": 1.0, "MW": 1e3}
_ENERGY_FACTOR_KWH = {"Wh": 1e-3, "kWh": 1.0, "Wh_meter": 1e-3, "kWh_meter": 1.0}


def allowed_units(canonical: str) -> tuple[str, ...] | None:
    """Units a source may use for ``canonical``; None if the name carries no known unit suffix."""
    base = canonical.split(".", 1)[0]
    if base in DIMENSIONLESS:
        return ("1",)
    for suffix, units in UNITS_BY_SUFFIX.items():
        if base.endswith(suffix):
            return units
    return None


def is_meter(unit: str) -> bool:
    """Whether ``unit`` is a cumulative meter reading (differenced into energy per interval)."""
    return unit.endswith("_meter")


def to_canonical(values: np.ndarray, unit: str, interval_s: float) -> np.ndarray:
    """Convert ``values`` given in ``unit`` to the canonical unit of their column.

    Parameters
    ----------
    values : np.ndarray
        Source values, one per source interval (for ``*_meter`` units: per-interval energy,
        already differenced by the caller).
    unit : str
        One of the units in :data:`UNITS_BY_SUFFIX` or ``"1"``.
    interval_s : float
        Length of a source interval [s]; turns energy per interval into mean power.

    Returns
    -------
    np.ndarray
        kW, °C, W/m², money/kWh, m/s or dimensionless.
    """
    v = np.asarray(values, dtype=float)
    if unit in _POWER_FACTOR_KW:
        return v * _POWER_FACTOR_KW[unit]
    if unit in _ENERGY_FACTOR_KWH:
        return v * _ENERGY_FACTOR_KWH[unit] * (3600.0 / interval_s)
    if unit == "degC" or unit == "1" or unit == "W/m2" or unit == "per_kWh" or unit == "m/s":
        return v
    if unit == "K":
        return v - 273.15
    if unit == "degF":
        return (v - 32.0) * (5.0 / 9.0)
    if unit == "kW/m2":
        return v * 1e3
    if unit == "per_MWh":
        return v * 1e-3
    if unit == "km/h":
        return v / 3.6
    raise ValueError(f"unknown unit {unit!r}")  # the mapping parser rejects unknown units first
