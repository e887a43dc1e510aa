"""KPI definitions on hand-built logs, where the right answer is known independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import small_house

from twin.kpis import KPI_KEYS, compute_kpis, peak_import_kw
from twin.runlog import discomfort_kh


def log_of(n: int, interval_s: float = 300.0, **columns) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp("2024-02-01", tz="Europe/Prague"), periods=n, freq=f"{int(interval_s)}s",
                        name="time")
    base = {c: np.zeros(n) for c in ("pv_kwh", "pv_curtailed_kwh", "base_load_kwh", "heating_kwh", "ev_kwh",
                                      "battery_charge_kwh", "battery_discharge_kwh", "import_kwh", "export_kwh",
                                      "cost", "grid_limit_violation_kwh", "ev_unmet_kwh", "decide_time_s")}
    base["duration_s"] = np.full(n, interval_s)
    for room in ("a", "b"):
        base[f"discomfort_kh.{room}"] = np.zeros(n)
        base[f"relay_switches.{room}"] = np.zeros(n, dtype=int)
    base.update(columns)
    return pd.DataFrame(base, index=idx)


def test_peak_import_is_the_largest_clock_aligned_15_min_mean():
    # 5-min intervals: 1, 2, 3 kWh... the window [00:15, 00:30) holds 4+5+6 = 15 kWh → 60 kW mean.
    imports = np.array([1, 2, 3, 4, 5, 6, 0, 0, 0], dtype=float)
    log = log_of(9, import_kwh=imports)
    assert peak_import_kw(log) == pytest.approx(sum(imports[3:6]) / 0.25)
    # shifted by one interval the same energies straddle two windows
    log = log_of(9, import_kwh=np.roll(imports, 1))
    assert peak_import_kw(log) == pytest.approx(max(0 + 1 + 2, 3 + 4 + 5, 6) / 0.25)


def test_energy_kpis():
    n = 12
    log = log_of(n, pv_kwh=np.full(n, 2.0), export_kwh=np.full(n, 0.5), import_kwh=np.full(n, 1.0),
                 base_load_kwh=np.full(n, 1.5), heating_kwh=np.full(n, 1.0), battery_charge_kwh=np.full(n, 0.2),
                 battery_discharge_kwh=np.full(n, 0.2), cost=np.full(n, 0.3),
                 decide_time_s=np.linspace(0.001, 0.012, n))
    house = small_house()
    k = compute_kpis(log, house)
    assert tuple(k) == KPI_KEYS
    assert k["self_consumption"] == pytest.approx((24 - 6) / 24)
    assert k["self_sufficiency"] == pytest.approx(1 - 12 / 30)
    assert k["battery_cycles"] == pytest.approx((2.4 + 2.4) / (2 * house.battery.capacity_kwh))
    assert k["cost"] == pytest.approx(3.6)
    assert k["decide_time_max_s"] == pytest.approx(0.012)
    assert k["decide_time_p95_s"] == pytest.approx(np.percentile(np.linspace(0.001, 0.012, n), 95))
    assert k["energy_balance_max_abs_kwh"] == pytest.approx(abs(2 + 1 + 0.2 - 1.5 - 1 - 0.2 - 0.5))


def test_no_pv_gives_no_self_consumption_rather_than_a_made_up_number():
    k = compute_kpis(log_of(4, base_load_kwh=np.ones(4), import_kwh=np.ones(4)), small_house(pv_kw=0.0))
    assert k["self_consumption"] is None
    assert k["self_sufficiency"] == 0.0


def test_discomfort_trapezoid_matches_boptest_definition():
    # One room, band [20, 24]; temperature from 19 to 18 over one hour: mean distance 1.5 K → 1.5 K·h.
    lower, upper = np.array([[20.0]]), np.array([[24.0]])
    got = discomfort_kh(np.array([[19.0]]), np.array([[18.0]]), lower, upper, np.array([3600.0]))
    assert got[0, 0] == pytest.approx(1.5)
    got = discomfort_kh(np.array([[25.0]]), np.array([[26.0]]), lower, upper, np.array([1800.0]))
    assert got[0, 0] == pytest.approx(1.5 * 0.5)
    got = discomfort_kh(np.array([[21.0]]), np.array([[23.0]]), lower, upper, np.array([3600.0]))
    assert got[0, 0] == 0.0


def test_daily_cost_risk_kpis_are_over_local_calendar_days():
    # 40 days of hourly rows; day d costs d (each of its 24 hours d/24), so the worst 5 % of
    # 40 days are the two most expensive days, 39 and 38.
    n_days = 40
    cost = np.repeat(np.arange(n_days, dtype=float) / 24.0, 24)
    log = log_of(24 * n_days, interval_s=3600.0, cost=cost)
    k = compute_kpis(log, small_house())
    assert k["daily_cost_cvar95"] == pytest.approx((39 + 38) / 2)
    assert k["daily_cost_std"] == pytest.approx(np.std(np.arange(n_days, dtype=float)))


def test_daily_cost_cvar_of_a_short_run_is_its_worst_day():
    cost = np.concatenate([np.full(24, 1.0 / 24), np.full(24, 5.0 / 24), np.full(24, 2.0 / 24)])
    k = compute_kpis(log_of(72, interval_s=3600.0, cost=cost), small_house())
    assert k["daily_cost_cvar95"] == pytest.approx(5.0)
    assert k["daily_cost_std"] == pytest.approx(np.std([1.0, 5.0, 2.0]))
