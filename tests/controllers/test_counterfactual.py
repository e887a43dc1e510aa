"""Counterfactual savings where the truth is known: the rule-based controller actually simulated on the same day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import simple_scenario, small_house

from controllers.mpc.controller import MpcController
from controllers.rule_based import RuleBasedController
from controllers.savings.counterfactual import complete_days, counterfactual_days, scenario_start_state, write_savings
from controllers.savings.replay import comfort_modes_from_log, day_scenario, ev_sessions_from_log
from twin.runner import RunSettings, simulate


@pytest.fixture(scope="module")
def mpc_day():
    house = small_house(n_rooms=2, two_node=True)
    scenario = simple_scenario(days=1, seed=5)
    result = simulate(house, scenario, MpcController(house), RunSettings(horizon_s=12 * 3600.0))
    return house, scenario, result


def test_counterfactual_of_an_mpc_day_matches_the_simulated_baseline_within_2_percent(mpc_day):
    house, scenario, mpc = mpc_day
    truth = simulate(house, scenario, RuleBasedController(house)).kpis["cost"]
    temps0, soc0 = scenario_start_state(house, scenario)
    (day,) = counterfactual_days(mpc.log, house, house, first_temps_c=temps0, first_soc=soc0,
                                 ev_sessions=scenario.ev_sessions, comfort_mode=scenario.data["comfort_mode"],
                                 weather=scenario.data)
    assert day.actual_cost == pytest.approx(mpc.kpis["cost"], rel=1e-9)
    assert abs(day.counterfactual_cost - truth) <= 0.02 * truth
    assert day.savings == pytest.approx(day.counterfactual_cost - day.actual_cost)
    assert day.savings_low <= day.savings <= day.savings_high


def test_without_weather_the_replay_misses_the_sun_and_says_so_through_its_band(mpc_day):
    house, scenario, mpc = mpc_day
    temps0, soc0 = scenario_start_state(house, scenario)
    (with_sun,) = counterfactual_days(mpc.log, house, house, first_temps_c=temps0, first_soc=soc0,
                                      ev_sessions=scenario.ev_sessions, weather=scenario.data)
    (no_sun,) = counterfactual_days(mpc.log, house, house, first_temps_c=temps0, first_soc=soc0,
                                    ev_sessions=scenario.ev_sessions)
    assert no_sun.model_rmse_c > with_sun.model_rmse_c


def test_live_path_reads_comfort_and_ev_stays_back_from_the_log(mpc_day):
    house, scenario, mpc = mpc_day
    modes = comfort_modes_from_log(mpc.log, house)
    expected = scenario.data["comfort_mode"].reindex(mpc.log.index, method="ffill").to_numpy()
    assert (modes == expected).mean() > 0.99
    sessions = ev_sessions_from_log(mpc.log)
    assert len(sessions) == 1 and sessions[0].arrival == mpc.log.index[0]
    replayed = day_scenario(mpc.log, house)
    hours = mpc.log["duration_s"] / 3600.0
    assert np.allclose(replayed.data["base_load_kw"], mpc.log["base_load_kwh"] / hours)


def test_only_complete_days_count():
    house = small_house(n_rooms=1)
    scenario = simple_scenario(start="2024-01-15 06:00", days=2)
    log = simulate(house, scenario, RuleBasedController(house)).log
    assert complete_days(log) == [pd.Timestamp("2024-01-16", tz="Europe/Prague")]


def test_write_savings_hands_each_day_to_the_sink(mpc_day):
    house, scenario, mpc = mpc_day
    got = []

    class Sink:
        def savings(self, day_start, actual_cost, counterfactual_cost, low, high):
            got.append((day_start, actual_cost, counterfactual_cost, low, high))

    days = write_savings(Sink(), house, scenario, mpc.log)
    assert len(got) == len(days) == 1 and got[0][1] == pytest.approx(mpc.kpis["cost"])
