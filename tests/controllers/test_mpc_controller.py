"""MpcController in closed loop on the twin, and its fallback chain (solver missing, forecast
outage, time limit without a solution)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
import simpy
from builders import simple_scenario, small_house

from controllers.mpc import MpcController, MpcSettings
from controllers.mpc.estimator import AirAsMass, ModelObserver
from controllers.mpc.rc_model import RcModel
from controllers.rule_based import RuleBasedController
from twin.config import reference_house
from twin.contracts import FORECAST_FIELDS, PlanStatus
from twin.errors import RegistryError
from twin.house import SimHouse
from twin.registry import ControllerContext, make_controller
from twin.runner import simulate
from twin.scenario import PerfectForecasts

LIGHT = MpcSettings(blocks=((900.0, 4 * 3600.0), (3600.0, 12 * 3600.0)))


def test_closed_loop_plans_every_cycle_and_keeps_the_limits():
    house = small_house(n_rooms=2, two_node=True)
    scenario = simple_scenario(days=1)
    controller = MpcController(house, LIGHT)
    result = simulate(house, scenario, controller)
    log, kpis = result.log, result.kpis
    assert set(log["plan_status"]) <= {PlanStatus.OPTIMAL.value, PlanStatus.FEASIBLE.value}
    assert kpis["cycles_without_plan"] == 0
    assert simulate(house, scenario, RuleBasedController(house)).kpis["cycles_without_plan"] is None  # no plans
    assert kpis["ev_unmet_kwh"] == pytest.approx(0.0, abs=0.05)
    assert kpis["grid_limit_violation_kwh"] == pytest.approx(0.0, abs=1e-9)
    plans = controller.plan_frame()
    assert len(plans) == 96 and plans["ok"].all()  # a re-plan every 15 min
    rule = simulate(house, scenario, RuleBasedController(house))
    # The MPC plans 48 h ahead and ends a 1-day run with a full battery, the baseline with an empty one:
    # count what is left in it at the day's mean price.
    assert net_cost(result, house) < net_cost(rule, house), \
        "planning with perfect forecasts must not cost more than the thermostats"


def net_cost(result, house) -> float:
    b = house.battery
    left_kwh = (result.log["battery_soc"].iloc[-1] - b.initial_soc) * b.capacity_kwh
    return result.kpis["cost"] - left_kwh * result.log["import_price_per_kwh"].mean()


def test_a_missing_solver_means_the_fallback_every_cycle(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no glpsol anywhere
    house = small_house(n_rooms=2)
    scenario = simple_scenario(days=0.25)
    result = simulate(house, scenario, MpcController(house, MpcSettings(solver="glpk")))
    assert (result.log["plan_status"] == PlanStatus.FALLBACK.value).all()
    assert result.kpis["cycles_without_plan"] == len(result.log)
    rule = simulate(house, scenario, RuleBasedController(house))
    pd.testing.assert_series_equal(result.log["cost"], rule.log["cost"])


class OutageForecasts:
    """Perfect forecasts, except that the forecast service is down (NaN) for issues in [start, end)."""

    name = "outage"

    def __init__(self, start_step: int, end_step: int) -> None:
        self.start_step, self.end_step = start_step, end_step

    def issue(self, actual: Mapping[str, np.ndarray], step: int, horizon_steps: int) -> dict[str, np.ndarray]:
        values = PerfectForecasts().issue(actual, step, horizon_steps)
        if self.start_step <= step < self.end_step:
            return {k: np.full(horizon_steps, np.nan) for k in FORECAST_FIELDS}
        return values

    def with_index(self, index: pd.DatetimeIndex) -> OutageForecasts:
        return self


@pytest.mark.parametrize(("max_age_s", "during"), [(48 * 3600.0, PlanStatus.LAST_PLAN), (1800.0, PlanStatus.FALLBACK)])
def test_a_forecast_outage_runs_the_last_plan_while_it_lasts(max_age_s, during):
    house = small_house(n_rooms=2)
    scenario = simple_scenario(days=0.5).with_forecasts(OutageForecasts(8, 20))  # down 02:00–05:00
    settings = MpcSettings(blocks=LIGHT.blocks, last_plan_max_age_s=max_age_s)
    result = simulate(house, scenario, MpcController(house, settings))
    log = result.log
    status = log["plan_status"]
    assert result.kpis["cycles_without_plan"] == 36  # 02:00–05:00 at 5-min decisions
    hour = log.index.hour + log.index.minute / 60
    assert (status[hour < 2] == PlanStatus.OPTIMAL.value).all()
    outage = status[(hour >= 2) & (hour < 5)]
    if during is PlanStatus.LAST_PLAN:
        assert (outage == PlanStatus.LAST_PLAN.value).all()
    else:  # the last plan (01:45) is too old after 02:15
        assert (outage[:4] == PlanStatus.LAST_PLAN.value).all()
        assert (outage[4:] == PlanStatus.FALLBACK.value).all()
    assert (status[hour >= 5] == PlanStatus.OPTIMAL.value).all(), "plans again once forecasts are back"


def test_a_time_limit_without_a_solution_falls_back():
    house = reference_house()
    full = simple_scenario(days=1)
    scenario = full.window(full.start, full.start + pd.Timedelta(minutes=30))
    settings = MpcSettings(strategy="milp", time_limit_s=0.1)
    log = simulate(house, scenario, MpcController(house, settings)).log
    assert (log["plan_status"] == PlanStatus.FALLBACK.value).all()


def test_the_oracle_needs_a_scenario_and_sees_the_future():
    house = small_house(n_rooms=1)
    with pytest.raises(RegistryError, match="needs a scenario"):
        make_controller("oracle", ControllerContext(house, None))
    oracle = make_controller("oracle", ControllerContext(house, simple_scenario(days=0.25)))
    assert oracle.perfect_foresight is True
    assert make_controller("mpc", ControllerContext(house, None)).perfect_foresight is False


def test_identical_input_gives_an_identical_plan():
    house = small_house(n_rooms=2, two_node=True)
    plant = SimHouse(house, simple_scenario(days=1), horizon_s=LIGHT.horizon_s)
    obs = plant.observe()
    plans = []
    for _ in range(2):
        controller = MpcController(house, LIGHT)
        controller.decide(obs)
        plans.append(controller.plan)
    for name in ("duty", "battery_kw", "ev_kw", "grid_import_kw", "temps_c"):
        np.testing.assert_array_equal(getattr(plans[0], name), getattr(plans[1], name))


def test_the_model_observer_tracks_the_unmeasured_mass():
    """Against the twin's true mass temperatures, the observer beats assuming mass = air."""
    house = small_house(n_rooms=2, two_node=True)
    scenario = simple_scenario(days=1, outdoor_c=-5.0)
    env = simpy.Environment()
    plant = SimHouse(house, scenario, env)
    rule = RuleBasedController(house)
    rc = RcModel(house)
    observer, naive = ModelObserver(0.5), AirAsMass()
    errors = {"observer": [], "naive": []}
    for i in range(int(scenario.duration_s // 300)):
        obs = plant.observe()
        step = min(int(env.now // scenario.step_s), plant.exo.n_steps - 1)
        truth = plant.node_temps_c()[rc.n_rooms:]
        gains = plant.exo.gain_w[max(step - 1, 0)] if i else plant.exo.gain_w[0]
        errors["observer"].append(np.abs(observer.update(obs, rc, gains)[rc.n_rooms:] - truth).mean())
        errors["naive"].append(np.abs(naive.update(obs, rc, gains)[rc.n_rooms:] - truth).mean())
        plant.apply(rule.decide(obs))
        env.run(until=env.now + 300)
    later = slice(48, None)  # after the first 4 h
    assert np.mean(errors["observer"][later]) < 0.5 * np.mean(errors["naive"][later])


def test_the_kalman_filter_can_be_where_every_solve_starts():
    from controllers.mpc.estimator import KalmanEstimator
    from twin.errors import ConfigError

    house = small_house(n_rooms=2, two_node=True)
    scenario = simple_scenario(days=0.5)
    controller = MpcController(house, MpcSettings(blocks=LIGHT.blocks, estimator="kalman"))
    assert isinstance(controller.estimator, KalmanEstimator)
    result = simulate(house, scenario, controller)
    assert result.kpis["cycles_without_plan"] == 0
    kf = controller.estimator.filter
    std = kf.std_c
    # the mass nodes are estimated, never measured: their uncertainty stays above the air sensors'
    assert (std[kf.n_rooms:] > std[: kf.n_rooms]).all()
    last = result.log.iloc[-1]
    assert np.allclose(kf.nodes_c[: kf.n_rooms], [last[f"temp_c.{r}"] for r in house.room_names], atol=0.5)
    with pytest.raises(ConfigError, match="estimator"):
        MpcSettings(estimator="crystal-ball")
