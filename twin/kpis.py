"""KPIs of a run, computed from its log alone (so live days are scored like simulated ones).

Definitions:
- ``cost``: Σ import·import price − export·export price [currency].
- ``self_consumption``: PV used on site / PV = max(0, PV − export) / PV; ``None`` without PV.
- ``self_sufficiency``: max(0, 1 − import / consumption), consumption = base load + heating + EV.
- ``discomfort_kh``: BOPTEST's thermal discomfort, Σ over rooms of ∫ distance outside the comfort
  band dt [K·h] (trapezoid between the twin's events); ``discomfort_kh_max_room`` the worst room.
- ``peak_import_kw``: largest mean import over a clock-aligned 15-min window [kW] (intervals
  longer than 15 min count with their own mean).
- ``battery_cycles``: equivalent full cycles, (charged + discharged AC energy) / (2 × capacity).
- ``ev_unmet_kwh``: energy short of the target at each departure [kWh].
- ``relay_switches``: relay state changes, all rooms, commanded or by the local thermostat.
- ``grid_limit_violation_kwh``: ∫ power above the import or export limit dt [kWh].
- ``decide_time_*_s``: wall time of ``Controller.decide`` [s].
- ``energy_balance_max_abs_kwh``: largest |PV + import + discharge − load − heating − EV − charge
  − export| of any interval [kWh]; a healthy twin shows rounding noise only.
- ``daily_cost_cvar95``: mean of the worst 5 % of the run's daily costs (local calendar days;
  at least the single worst day), the risk an owner feels; ``daily_cost_std`` their standard
  deviation (population, 0 for a one-day run) [currency].
- ``cycles_without_plan``: decisions taken without a fresh plan (a ``PlanStatus`` in
  ``twin.contracts.WITHOUT_PLAN``: the last valid plan or the fallback); ``None`` for a
  controller that does not plan (no decision carries a status of ``twin.contracts.PLANNING``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin.config import HouseConfig
from twin.contracts import PLANNING, WITHOUT_PLAN, status_of_label
from twin.runlog import energy_residual_kwh

KPI_KEYS = (
    "cost", "import_kwh", "export_kwh", "pv_kwh", "self_consumption", "self_sufficiency", "discomfort_kh",
    "discomfort_kh_max_room", "peak_import_kw", "battery_cycles", "ev_unmet_kwh", "relay_switches",
    "grid_limit_violation_kwh", "decide_time_mean_s", "decide_time_p95_s", "decide_time_max_s",
    "energy_balance_max_abs_kwh", "cycles_without_plan", "daily_cost_cvar95", "daily_cost_std",
)

#: Share of the worst days in ``daily_cost_cvar95``.
CVAR_TAIL = 0.05

PEAK_WINDOW_S = 900.0


def peak_import_kw(log: pd.DataFrame) -> float:
    """Largest mean import power over clock-aligned 15-min windows [kW]."""
    if log.empty:
        return 0.0
    duration = log["duration_s"].to_numpy()
    if duration.max() > PEAK_WINDOW_S + 1e-6:
        return float((log["import_kwh"] / (log["duration_s"] / 3600.0)).max())
    window = pd.DatetimeIndex(log.index).tz_convert("UTC").floor("15min")
    return float(log["import_kwh"].groupby(window).sum().max() / (PEAK_WINDOW_S / 3600.0))


def cycles_without_plan(log: pd.DataFrame) -> int | None:
    """Decisions without a fresh plan; None when no decision reports a plan status."""
    if "plan_status" not in log.columns:
        return None
    # The column is contracts.plan_label's text ("optimal [forecasts=learned]"): read back its status,
    # once per distinct text (a year holds ~10^5 decisions but a handful of texts).
    counts = log["plan_status"].fillna("").astype(str).value_counts(sort=False)
    statuses = [(status_of_label(str(label)), int(n)) for label, n in counts.items()]
    if not any(s in PLANNING for s, _ in statuses):
        return None
    return sum(n for s, n in statuses if s in WITHOUT_PLAN)


def daily_costs(log: pd.DataFrame) -> pd.Series:
    """Cost of every local calendar day of the run (the log's own time zone) [currency]."""
    if log.empty:
        return pd.Series(dtype=float)
    index = pd.DatetimeIndex(log.index)
    days = index.normalize() if index.tz is not None else index.floor("D")
    costs: pd.Series = log["cost"].groupby(days).sum()
    return costs


def cvar(values: np.ndarray, tail: float = CVAR_TAIL) -> float | None:
    """Mean of the largest ``tail`` share of ``values`` (at least one value); None when empty."""
    values = np.sort(np.asarray(values, dtype=float))[::-1]
    if values.size == 0:
        return None
    worst = max(1, math.ceil(tail * values.size - 1e-9))
    return float(values[:worst].mean())


def compute_kpis(log: pd.DataFrame, house: HouseConfig) -> dict[str, float | int | None]:
    """Every KPI of :data:`KPI_KEYS` from a run log (see the module docstring)."""
    total = {c: float(log[c].sum()) for c in ("pv_kwh", "import_kwh", "export_kwh", "base_load_kwh",
                                                "heating_kwh", "ev_kwh", "battery_charge_kwh",
                                                "battery_discharge_kwh", "cost", "ev_unmet_kwh",
                                                "grid_limit_violation_kwh")}
    consumption = total["base_load_kwh"] + total["heating_kwh"] + total["ev_kwh"]
    discomfort = log[[c for c in log.columns if c.startswith("discomfort_kh.")]].sum()
    switches = log[[c for c in log.columns if c.startswith("relay_switches.")]].to_numpy().sum()
    decide = log["decide_time_s"].to_numpy(dtype=float)
    decide = decide[np.isfinite(decide)]
    capacity = house.battery.capacity_kwh if house.battery is not None else math.nan
    residual = energy_residual_kwh(log).abs()
    daily = daily_costs(log)
    kpis: dict[str, float | int | None] = {
        "cost": total["cost"],
        "import_kwh": total["import_kwh"],
        "export_kwh": total["export_kwh"],
        "pv_kwh": total["pv_kwh"],
        "self_consumption": (max(0.0, total["pv_kwh"] - total["export_kwh"]) / total["pv_kwh"]
                             if total["pv_kwh"] > 0 else None),
        "self_sufficiency": (max(0.0, 1.0 - total["import_kwh"] / consumption) if consumption > 0 else None),
        "discomfort_kh": float(discomfort.sum()),
        "discomfort_kh_max_room": float(discomfort.max()) if len(discomfort) else 0.0,
        "peak_import_kw": peak_import_kw(log),
        "battery_cycles": ((total["battery_charge_kwh"] + total["battery_discharge_kwh"]) / (2 * capacity)
                           if house.battery is not None else 0.0),
        "ev_unmet_kwh": total["ev_unmet_kwh"],
        "relay_switches": int(switches),
        "grid_limit_violation_kwh": total["grid_limit_violation_kwh"],
        "decide_time_mean_s": float(decide.mean()) if decide.size else None,
        "decide_time_p95_s": float(np.percentile(decide, 95)) if decide.size else None,
        "decide_time_max_s": float(decide.max()) if decide.size else None,
        "energy_balance_max_abs_kwh": float(residual.max()) if len(residual) else 0.0,
        "cycles_without_plan": cycles_without_plan(log),
        "daily_cost_cvar95": cvar(daily.to_numpy()),
        "daily_cost_std": float(daily.std(ddof=0)) if len(daily) else None,
    }
    return kpis
