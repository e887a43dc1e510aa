"""The stochastic MPC: its scenarios, its two-stage program, risk, and the value of hedging."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from builders import small_house
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpc_inputs import flat_inputs

from controllers.mpc.model import MpcModel
from controllers.mpc.settings import MpcSettings
from controllers.mpc.solve import Optimizer
from controllers.mpc.solvers import make_backend
from controllers.mpc.stochastic.crash import CrashBasis
from controllers.mpc.stochastic.optimizer import StochasticOptimizer
from controllers.mpc.stochastic.scenarios import fast_forward, scenario_tree
from controllers.mpc.stochastic.settings import StochasticSettings
from twin.config import HouseConfig
from twin.errors import ConfigError

#: A short horizon keeps the programs small: 1 h blocks to 12 h.
SHORT = MpcSettings(blocks=((3600.0, 12 * 3600.0),), replan_interval_s=3600.0, mip_gap=1e-6, mip_abs_gap=0.0)


def day_inputs(opt: Optimizer, pv_peak_kw: float = 3.0):
    """A day from 06:00: sun from 8 to 16 h, a dearer evening, prices not yet published beyond midnight."""
    hours = opt.grid.edges_s[:-1] / 3600.0 + 6.0
    pv = pv_peak_kw * np.clip(np.sin((hours - 8.0) / 8.0 * np.pi), 0.0, None)
    price = np.where((hours >= 17) & (hours < 21), 0.40, 0.20)
    start = datetime(2024, 3, 15, 6, tzinfo=ZoneInfo("Europe/Prague"))
    return flat_inputs(opt, start=start, pv_kw=pv, import_price_per_kwh=price,
                       export_price_per_kwh=np.full(len(hours), 0.05), outdoor_c=np.full(len(hours), 3.0))


def test_the_tree_has_27_correlated_trajectories_around_the_forecast():
    opt = Optimizer(small_house(), MpcSettings())
    base = day_inputs(opt)
    s = StochasticSettings()
    tree = scenario_tree(base, opt.grid, s, pv_cap_kw=5.0)
    assert len(tree) == 27
    assert tree.probabilities.sum() == pytest.approx(1.0)
    center = tree.branches.index((0.0, 0.0, 0.0))
    np.testing.assert_array_equal(tree.inputs[center].pv_kw, base.pv_kw)
    for x, (pv, _load, price) in zip(tree.inputs, tree.branches, strict=True):
        deviation = x.pv_kw - base.pv_kw
        # a whole trajectory: PV is above the forecast wherever it shines (P90) or below it throughout (P10)
        assert (np.sign(deviation[base.pv_kw > 0.01]) == pv).all()
        # prices are certain up to midnight (published), uncertain after it
        published = opt.grid.edges_s[:-1] < 18 * 3600.0
        np.testing.assert_allclose(x.import_price_per_kwh[published], base.import_price_per_kwh[published])
        if price != 0.0:
            assert (np.sign(x.import_price_per_kwh[~published] - base.import_price_per_kwh[~published]) == price).all()


@pytest.mark.parametrize("n", [1, 3, 9])
def test_fast_forward_keeps_n_scenarios_and_all_the_probability(n):
    opt = Optimizer(small_house(), MpcSettings())
    tree = scenario_tree(day_inputs(opt), opt.grid, StochasticSettings(), pv_cap_kw=5.0)
    kept = fast_forward(tree, n, opt.grid)
    assert len(kept) == n
    assert kept.probabilities.sum() == pytest.approx(1.0)
    assert (kept.probabilities > 0).all()
    if n == 1:
        assert kept.branches == ((0.0, 0.0, 0.0),)  # the tree's centre represents it best


def test_bad_stochastic_settings_name_the_field():
    with pytest.raises(ConfigError, match="cvar_alpha"):
        StochasticSettings(cvar_alpha=1.0)
    with pytest.raises(ConfigError, match="unknown stochastic MPC option 'scenario'"):
        StochasticSettings().with_options({"scenario": "3"})


def test_with_one_scenario_it_is_the_deterministic_mpc():
    house = small_house(n_rooms=2, two_node=True)
    settings = replace(SHORT, strategy="milp")
    deterministic = Optimizer(house, settings)
    inputs = day_inputs(deterministic)
    plan, _ = deterministic.solve(inputs)
    one = StochasticOptimizer(house, settings, StochasticSettings(scenarios=1, risk_weight=0.0))
    stochastic, _ = one.solve(inputs)
    assert plan is not None and stochastic is not None
    assert stochastic.objective == pytest.approx(plan.objective, rel=1e-6, abs=1e-6)
    assert stochastic.battery_kw[0] == pytest.approx(plan.battery_kw[0], abs=1e-5)
    np.testing.assert_allclose(stochastic.duty[0], plan.duty[0], atol=1e-5)


def test_solves_from_the_scenarios_bases_reach_the_cold_optimum(monkeypatch):
    """The start basis (crash.py: cold, then from warm single-scenario solves) and the Devex-priced
    dual simplex change the path, not the optimum."""
    house = small_house(n_rooms=2, two_node=True)
    stochastic = StochasticSettings(scenarios=3)
    crashed = StochasticOptimizer(house, SHORT, stochastic)
    crashed.prepare()
    first = day_inputs(crashed)
    later = replace(first, outdoor_c=first.outdoor_c - 4.0, import_price_per_kwh=first.import_price_per_kwh * 1.5)
    plans = [crashed.solve(x)[0] for x in (first, later)]
    monkeypatch.setattr(CrashBasis, "start", lambda self, inputs, solve: False)  # cold: interior point
    for x, plan in zip((first, later), plans, strict=True):
        cold, report = StochasticOptimizer(house, SHORT, stochastic).solve(x)
        assert plan is not None and cold is not None, report.message
        assert plan.objective == pytest.approx(cold.objective, rel=1e-6, abs=1e-6)


def within_limits(house: HouseConfig, plan) -> None:
    b, c, g = house.battery, house.ev_charger, house.grid
    tol = 1e-6
    assert (plan.duty >= -tol).all() and (plan.duty <= 1 + tol).all()
    assert (plan.battery_kw <= b.max_charge_kw + tol).all() and (plan.battery_kw >= -b.max_discharge_kw - tol).all()
    assert (plan.battery_kwh >= b.soc_min * b.capacity_kwh - tol).all()
    assert (plan.battery_kwh <= b.soc_max * b.capacity_kwh + tol).all()
    assert (plan.ev_kw <= c.max_power_kw + tol).all()
    assert plan.ev_kw[0] == 0.0 or plan.ev_kw[0] >= c.min_power_kw - tol  # the executed block: 0 or in range
    assert (plan.grid_export_kw <= g.export_limit_kw + tol).all()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(soc=st.floats(0.1, 0.9), pv_peak=st.floats(0.0, 5.0), evening=st.floats(0.1, 1.0),
       ev_need=st.floats(0.0, 30.0), cold=st.floats(-15.0, 10.0))
def test_every_scenario_plan_respects_the_hard_limits(soc, pv_peak, evening, ev_need, cold):
    house = small_house(n_rooms=1)
    opt = StochasticOptimizer(house, SHORT, StochasticSettings(scenarios=3))
    base = day_inputs(opt, pv_peak)
    hours = opt.grid.edges_s[:-1] / 3600.0 + 6.0
    inputs = replace(base, battery_kwh=soc * house.battery.capacity_kwh, outdoor_c=np.full(len(hours), cold),
                     import_price_per_kwh=np.where(hours >= 17, evening, 0.2),
                     ev_fraction=(hours < 14).astype(float), ev_need_kwh=ev_need)
    plan, report = opt.solve(inputs)
    assert plan is not None, report.message
    plans = opt.last_scenarios.plans
    for p in plans:
        within_limits(house, p)
    # the first stage is one decision for every scenario
    for p in plans[1:]:
        assert p.battery_kw[0] == pytest.approx(plans[0].battery_kw[0], abs=1e-6)
        assert p.ev_kw[0] == pytest.approx(plans[0].ev_kw[0], abs=1e-6)
        np.testing.assert_allclose(p.duty[0], plans[0].duty[0], atol=1e-6)


def test_risk_weight_does_not_raise_the_plans_cvar():
    house = small_house(n_rooms=1)
    stochastic = StochasticSettings(scenarios=9, pv_spread=0.8, price_spread=0.5, spread_ramp_h=1.0)
    neutral = StochasticOptimizer(house, SHORT, replace(stochastic, risk_weight=0.0))
    averse = StochasticOptimizer(house, SHORT, replace(stochastic, risk_weight=5.0))
    inputs = day_inputs(neutral, pv_peak_kw=4.0)
    for opt in (neutral, averse):
        plan, report = opt.solve(inputs)
        assert plan is not None, report.message
    assert averse.last_scenarios.cvar <= neutral.last_scenarios.cvar + 1e-6
    assert averse.last_scenarios.expected_cost >= neutral.last_scenarios.expected_cost - 1e-6


# --- hedging: a bimodal PV day (clear or overcast) ------------------------------------------------

#: One 3-hour night block (the first stage: what is executed before the next re-plan), then hours to 24 h.
BIMODAL = MpcSettings(blocks=((10800.0, 10800.0), (3600.0, 86400.0)), replan_interval_s=10800.0, mip_gap=1e-6,
                      mip_abs_gap=0.0, battery_terminal_weight=0.0)


def bimodal_case():
    """From 03:00: a cheap night, then dear energy (dearest in the evening, with a high load), sun 9–17 h;
    the forecast (P50) is the mean of a clear day (2×) and an overcast one (0).
    No rooms, no car: the battery is the question."""
    house = replace(small_house(n_rooms=0, ev=False), name="bimodal")
    opt = Optimizer(house, BIMODAL)
    starts = opt.grid.edges_s[:-1] / 3600.0 + 3.0
    hours = (opt.grid.edges_s[:-1] + opt.grid.edges_s[1:]) / 7200.0 + 3.0
    pv = np.where((hours > 9) & (hours < 17), 2.5, 0.0)
    price = np.where(starts < 6, 0.05, np.where((hours >= 17) & (hours < 22), 0.45, 0.40))
    load = np.where((hours >= 17) & (hours < 22), 2.0, 0.3)
    start = datetime(2024, 4, 10, 3, tzinfo=ZoneInfo("Europe/Prague"))
    b = house.battery
    inputs = flat_inputs(opt, start=start, pv_kw=pv, base_load_kw=load, import_price_per_kwh=price,
                         export_price_per_kwh=np.zeros(len(hours)), battery_kwh=b.soc_min * b.capacity_kwh,
                         terminal_price_per_kwh=0.0)
    return house, inputs


def realised_cost(house: HouseConfig, outcome, first_battery_kw: float) -> float:
    """Cost of the day when ``first_battery_kw`` was executed in the first block and the rest was
    re-planned knowing the outcome (the best any controller could then do)."""
    model = MpcModel(house, Optimizer(house, BIMODAL).grid, Optimizer(house, BIMODAL).rc, BIMODAL)
    model.update(outcome)
    m = model.m
    m.charge[0].fix(max(first_battery_kw, 0.0))
    m.discharge[0].fix(max(-first_battery_kw, 0.0))
    result = make_backend("highs").solve(m, time_limit_s=30, mip_gap=1e-6, abs_gap=0.0, warm_start=False)
    assert result.has_solution, result.message
    import pyomo.environ as pyo

    return float(pyo.value(m.energy_cost))


def test_with_bimodal_pv_the_stochastic_plan_keeps_the_battery_margin_and_costs_less():
    house, forecast = bimodal_case()
    deterministic, _ = Optimizer(house, BIMODAL).solve(forecast)
    hedging = StochasticOptimizer(house, BIMODAL, StochasticSettings(
        scenarios=3, pv_spread=1.0, load_spread=0.0, price_spread=0.0, temp_spread_c=0.0, spread_ramp_h=0.1,
        risk_weight=0.0))
    stochastic, report = hedging.solve(forecast)
    assert deterministic is not None and stochastic is not None, report.message
    # The P50 day fills the battery from the sun, so the deterministic plan leaves it empty in the night;
    # the stochastic one charges at the night price, the margin an overcast day needs for the evening.
    assert stochastic.battery_kwh[1] > deterministic.battery_kwh[1] + 1.0
    clear = replace(forecast, pv_kw=2.0 * forecast.pv_kw)
    overcast = replace(forecast, pv_kw=0.0 * forecast.pv_kw)
    cost_deterministic = sum(realised_cost(house, o, float(deterministic.battery_kw[0])) for o in (clear, overcast))
    cost_stochastic = sum(realised_cost(house, o, float(stochastic.battery_kw[0])) for o in (clear, overcast))
    assert cost_stochastic < cost_deterministic - 0.05
