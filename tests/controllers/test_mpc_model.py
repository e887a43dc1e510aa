"""The MPC's MILP: units, its RC model against the exact network, hard limits, and economics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from builders import small_house
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpc_inputs import block_hours, flat_inputs
from pyomo.util.check_units import assert_units_consistent

from controllers.mpc.model import MpcModel
from controllers.mpc.plan import Plan
from controllers.mpc.settings import MpcSettings
from controllers.mpc.solve import Optimizer
from twin.config import reference_house
from twin.thermal import step as exact_step


@pytest.fixture(scope="module")
def small() -> Optimizer:
    return Optimizer(small_house(n_rooms=2, two_node=True), MpcSettings())


def unit_checked(kind: str, house=None) -> MpcModel:
    """The model of ``kind`` with its fixed coefficients as Params with units (same structure)."""
    opt = Optimizer(house or small_house(n_rooms=2, two_node=True), MpcSettings())
    return MpcModel(opt.house, opt.grid, opt.rc, opt.settings, relaxed=kind == "lp",
                    fixed_heating=kind == "dispatch", unit_check=True)


@pytest.mark.parametrize("kind", ["lp", "milp", "dispatch"])
def test_every_model_is_unit_consistent(kind):
    assert_units_consistent(unit_checked(kind).m)


def test_unit_checked_and_solver_models_are_the_same_program(small):
    """The unit-checked model and the one the solver gets (plain-number coefficients) agree."""
    from controllers.mpc.solvers import make_backend

    checked = unit_checked("milp", small.house)
    inputs = flat_inputs(small, outdoor_c=np.full(small.grid.n_blocks, -3.0))
    checked.update(inputs)
    outcome = make_backend("highs").solve(checked.m, time_limit_s=30, mip_gap=1e-6, abs_gap=0.0, warm_start=False)
    direct = Optimizer(small.house, MpcSettings(strategy="milp", mip_gap=1e-6, mip_abs_gap=0.0))
    plan, _ = direct.solve(inputs)
    assert outcome.objective == pytest.approx(plan.objective, rel=1e-6)


def test_unit_check_catches_a_wrong_unit():
    import pyomo.environ as pyo
    from pyomo.core.base.units_container import InconsistentUnitsError

    model = unit_checked("milp")
    model.m.wrong = pyo.Constraint(expr=model.m.grid_export[0] <= model.m.energy[1])  # kW against kWh
    with pytest.raises(InconsistentUnitsError, match="kilowatt not compatible with kilowatt_hour"):
        assert_units_consistent(model.m)


def test_sparsified_rc_model_stays_close_to_the_exact_network():
    """48 h of random heating and winter weather: the MILP's dynamics against twin.thermal's exact step."""
    opt = Optimizer(reference_house(), MpcSettings())
    rc = opt.rc
    rng = np.random.default_rng(3)
    exact = sparse = np.full(rc.n_nodes, 20.0)
    for length in opt.grid.durations_s:
        duty = rng.uniform(0, 0.25, rc.n_rooms)
        outdoor = rng.uniform(-10, 5)
        gains = rng.uniform(0, 300, rc.n_nodes)
        exact = exact_step(exact, outdoor, rc.heater_w(duty) + gains, rc.matrices, length)
        m = rc.sparse_step(length, opt.settings.model_coefficient_tol)
        sparse = m.phi @ sparse + m.out * outdoor + m.heat @ gains + m.duty @ duty
    assert exact.max() - exact.min() > 3.0  # rooms far apart: the lumping is exercised
    assert np.abs(sparse - exact).max() < 0.05


def test_plan_temperatures_follow_the_exact_network(small):
    """What the plan predicts is what the exact RC network does with the plan's duty cycles."""
    inputs = flat_inputs(small, outdoor_c=np.linspace(-5, 5, small.grid.n_blocks))
    plan, report = small.solve(inputs)
    assert report.ok
    temps = inputs.initial_temps_c
    rc = small.rc
    for k, length in enumerate(small.grid.durations_s):
        temps = exact_step(temps, inputs.outdoor_c[k], rc.heater_w(plan.duty[k]) + inputs.node_gains_w[k],
                           rc.matrices, length)
        np.testing.assert_allclose(plan.temps_c[k + 1], temps, atol=0.02)
    assert plan.duty.sum() > 0  # it had to heat: 0 °C outside


def check_hard_limits(plan: Plan, opt: Optimizer, inputs) -> None:
    house = opt.house
    b, c, g = house.battery, house.ev_charger, house.grid
    tol = 1e-6
    assert ((plan.duty >= -tol) & (plan.duty <= 1 + tol)).all()
    assert (plan.battery_kw <= b.max_charge_kw + tol).all() and (plan.battery_kw >= -b.max_discharge_kw - tol).all()
    assert (plan.battery_kwh >= b.soc_min * b.capacity_kwh - tol).all()
    assert (plan.battery_kwh <= b.soc_max * b.capacity_kwh + tol).all()
    on = plan.ev_kw > 0
    assert ((plan.ev_kw[on] >= c.min_power_kw - tol) & (plan.ev_kw[on] <= c.max_power_kw + tol)).all()
    assert (plan.ev_kw[inputs.ev_fraction <= 0] == 0).all(), "charging while the car is away"
    assert (plan.grid_export_kw <= g.export_limit_kw + tol).all()
    over = np.maximum(plan.grid_import_kw - g.import_limit_kw, 0) @ opt.grid.durations_h
    assert over <= plan.relaxed.get("import_over_limit_kwh", 0.0) + 1e-4, "import above the limit, unreported"
    assert (plan.grid_import_kw >= -tol).all() and (plan.grid_export_kw >= -tol).all()
    delivered = (plan.ev_kw * inputs.ev_fraction * opt.grid.durations_h).sum() * c.efficiency
    top_up = c.min_power_kw * opt.grid.durations_h.min() * c.efficiency  # the one allowed overshoot
    assert delivered <= inputs.ev_need_kwh + top_up + 1e-4
    assert delivered + plan.relaxed.get("ev_shortfall_kwh", 0.0) >= inputs.ev_need_kwh - 1e-3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), negative=st.booleans(), heavy=st.booleans())
def test_plans_never_exceed_hard_limits(small, seed, negative, heavy):
    """Random prices (possibly negative), weather, loads and states: every plan within every hard limit."""
    rng = np.random.default_rng(seed)
    k, n, r = small.grid.n_blocks, small.rc.n_nodes, small.rc.n_rooms
    b = small.house.battery
    export = rng.uniform(-0.3 if negative else 0.0, 0.2, k)
    departure_h = rng.uniform(0, 60)
    inputs = flat_inputs(
        small, outdoor_c=rng.uniform(-15, 30, k), pv_kw=rng.uniform(0, 5, k),
        base_load_kw=rng.uniform(0, 30 if heavy else 2, k), import_price_per_kwh=export + rng.uniform(0, 0.3, k),
        export_price_per_kwh=export, node_gains_w=rng.uniform(0, 2000, (k, n)),
        comfort_lower_c=rng.uniform(15, 22, (k, r)), comfort_upper_c=rng.uniform(23, 28, (k, r)),
        initial_temps_c=rng.uniform(10, 30, n), battery_kwh=rng.uniform(b.soc_min, b.soc_max) * b.capacity_kwh,
        ev_fraction=np.clip((departure_h * 3600 - small.grid.edges_s[:-1]) / small.grid.durations_s, 0, 1),
        ev_need_kwh=rng.uniform(0, 80))
    plan, report = small.solve(inputs)
    assert report.ok, report.message
    check_hard_limits(plan, small, inputs)


@pytest.fixture(scope="module")
def no_rooms() -> Optimizer:
    return Optimizer(small_house(n_rooms=0, pv_kw=0.0), MpcSettings())


def test_a_price_spike_makes_the_battery_charge_before_it(no_rooms):
    hours = block_hours(no_rooms)
    spike = (hours >= 10) & (hours < 13)
    prices = np.where(spike, 1.5, 0.2)
    plan, _ = no_rooms.solve(flat_inputs(no_rooms, import_price_per_kwh=prices, export_price_per_kwh=prices - 0.1,
                                         terminal_price_per_kwh=0.2))
    b = no_rooms.house.battery
    first = int(np.argmax(spike))
    assert plan.battery_kwh[first] > b.soc_max * b.capacity_kwh - 0.05, "full when the spike starts"
    assert (plan.battery_kw[:first] >= -1e-6).all() and plan.battery_kw[:first].max() > 1.0, "charged before"
    assert plan.battery_kw[spike].min() < -1.0, "discharged during the spike"
    flat, _ = no_rooms.solve(flat_inputs(no_rooms, import_price_per_kwh=np.full(len(hours), 0.2),
                                         terminal_price_per_kwh=0.2))
    assert np.abs(flat.battery_kw).max() < 1e-6, "no reason to cycle at flat prices"


def test_negative_prices_make_the_house_absorb_energy(small):
    """Negative prices for a few midday hours with PV: the battery charges, the rooms warm up, the car charges."""
    hours = block_hours(small)
    negative = (hours >= 3) & (hours < 6)
    k = small.grid.n_blocks
    fraction = np.ones(k)
    normal = flat_inputs(small, pv_kw=np.where(negative, 4.0, 0.0), ev_fraction=fraction, ev_need_kwh=40.0)
    cheap = replace(normal, import_price_per_kwh=np.where(negative, -0.1, 0.25),
                    export_price_per_kwh=np.where(negative, -0.2, 0.05))
    base_plan, _ = small.solve(normal)
    plan, _ = small.solve(cheap)
    dt = small.grid.durations_h
    assert plan.grid_export_kw[negative] @ dt[negative] < 1e-6, "no export while it costs money"
    assert plan.grid_import_kw[negative] @ dt[negative] > base_plan.grid_import_kw[negative] @ dt[negative] + 1.0
    assert plan.battery_kw[negative].max() > 1.0
    heater = small.rc.heater_kw
    assert plan.heating_kw(heater)[negative].sum() > base_plan.heating_kw(heater)[negative].sum() + 1.0
    assert plan.ev_kw[negative].sum() > 0


def test_the_ev_reaches_its_target_when_it_can(small):
    k = small.grid.n_blocks
    fraction = np.clip((8 * 3600 - small.grid.edges_s[:-1]) / small.grid.durations_s, 0, 1)  # leaves in 8 h
    prices = np.where(block_hours(small) < 4, 0.3, 0.15)
    plan, _ = small.solve(flat_inputs(small, ev_fraction=fraction, ev_need_kwh=30.0, import_price_per_kwh=prices))
    c = small.house.ev_charger
    delivered = (plan.ev_kw * fraction * small.grid.durations_h).sum() * c.efficiency
    assert delivered == pytest.approx(30.0, abs=1e-3)
    assert "ev_shortfall_kwh" not in plan.relaxed
    assert plan.ev_kw[block_hours(small) < 4].sum() == 0, "waits for the cheap hours"
    assert (plan.ev_kw[fraction == 0] == 0).all()
    assert k > 0


def test_the_ev_reports_its_shortfall_when_it_cannot(small):
    fraction = np.clip((3600 - small.grid.edges_s[:-1]) / small.grid.durations_s, 0, 1)  # leaves in 1 h
    plan, report = small.solve(flat_inputs(small, ev_fraction=fraction, ev_need_kwh=50.0))
    c = small.house.ev_charger
    possible = c.max_power_kw * 1.0 * c.efficiency
    assert report.ok
    assert plan.relaxed["ev_shortfall_kwh"] == pytest.approx(50.0 - possible, abs=1e-3)
    assert plan.ev_kw[:4].min() == pytest.approx(c.max_power_kw)


def test_a_top_up_below_the_charger_s_minimum_is_still_delivered(small):
    """0.2 kWh short of the target, one hour to go: a few minutes at minimum power, not a shortfall."""
    fraction = np.clip((3600 - small.grid.edges_s[:-1]) / small.grid.durations_s, 0, 1)
    plan, _ = small.solve(flat_inputs(small, ev_fraction=fraction, ev_need_kwh=0.2))
    assert "ev_shortfall_kwh" not in plan.relaxed
    assert plan.ev_kw.max() == pytest.approx(small.house.ev_charger.min_power_kw)
