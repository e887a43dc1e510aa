"""LearnedForecasts: any controller plans with learned forecasts; nothing leaks; runs stay deterministic."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from builders import small_house

from controllers.forecasting.boosting import BoostingParams
from controllers.forecasting.features import Calendar
from controllers.forecasting.load import LoadForecaster
from controllers.forecasting.prices import PriceForecaster
from controllers.forecasting.pv import PvForecaster
from controllers.forecasting.scorecard import ScoredController
from controllers.forecasting.solar import PvSite
from controllers.forecasting.wrapper import LearnedForecasts, LearnedForecastSettings
from controllers.rule_based import RuleBasedController
from scenarios.synthetic import generate
from scenarios.synthetic_spec import SyntheticSpec
from twin.conformance import check_controller
from twin.contracts import Command
from twin.house import SimHouse
from twin.runner import RunSettings, simulate

FAST = BoostingParams(rounds=20, max_depth=3, learning_rate=0.2)


class Recorder:
    """Records the observations it is shown; asks for nothing."""

    def __init__(self) -> None:
        self.seen = []

    def decide(self, obs):
        self.seen.append(obs)
        return Command(until=obs.after(900), plan_note="recorder")


@pytest.fixture(scope="module")
def world():
    """16 synthetic days at 1 h; the first 15 are the house's past, the last one is run."""
    house = small_house(n_rooms=1)
    spec = SyntheticSpec(name="learned-v1", start=dt.date(2024, 4, 1), days=16, step_minutes=60, seed=3)
    scenario = generate(spec)
    history = scenario.data.copy()
    history["pv_power_kw"] = SimHouse(house, scenario).exo.series["pv_power_kw"][: len(history)]
    cut = scenario.start + pd.Timedelta(days=15)
    return house, scenario.window(cut, scenario.end), history[history.index < cut]


def wrapper(inner, house, history, **settings):
    calendar = Calendar("Europe/Prague", "CZ")
    return LearnedForecasts(
        inner, pv=PvForecaster(PvSite.from_house(house), params=FAST), load=LoadForecaster(calendar, params=FAST),
        prices={c: PriceForecaster(calendar, target=c, params=FAST)
                for c in ("import_price_per_kwh", "export_price_per_kwh")},
        history=history, settings=LearnedForecastSettings(min_history_days=3, **settings))


def test_without_enough_history_the_scenario_forecast_passes_through(world):
    house, day, _ = world
    recorder = Recorder()
    result = simulate(house, day, LearnedForecasts(recorder, load=LoadForecaster(Calendar("Europe/Prague"))),
                      RunSettings())
    assert result.log["plan_status"].str.endswith("[forecasts=scenario]").all()
    assert len(recorder.seen) == 24 * 12


def test_with_history_the_inner_controller_plans_with_learned_forecasts(world):
    house, day, history = world
    recorder = Recorder()
    learned = wrapper(recorder, house, history)
    result = simulate(house, day, learned, RunSettings())
    assert result.log["plan_status"].str.endswith("recorder [forecasts=learned]").all()
    assert learned.fits == 1, "trained once on the history, then only re-issued hourly"
    twin = SimHouse(house, day)
    obs = recorder.seen[40]  # 03:20 on the run day
    issued = day.forecasts.issue(twin.exo.series, 3, obs.forecast.horizon_steps)
    assert not np.allclose(obs.forecast.base_load_kw, issued["base_load_kw"])
    assert not np.allclose(obs.forecast.pv_power_kw, issued["pv_power_kw"])
    np.testing.assert_array_equal(obs.forecast.outdoor_temp_c, issued["outdoor_temp_c"])  # weather: as issued
    published = obs.forecast.times < pd.Timestamp("2024-04-17", tz="Europe/Prague")  # issued before 13:00
    np.testing.assert_array_equal(obs.forecast.import_price_per_kwh[published],
                                  issued["import_price_per_kwh"][published])
    night = (obs.forecast.times.hour < 4) | (obs.forecast.times.hour >= 21)
    assert (obs.forecast.pv_power_kw[night] == 0).all()
    table = learned.scorecard.table()
    assert table.loc[("base_load_kw", "0-6 h"), "n"] > 0


def test_a_wrapped_controller_still_conforms_and_replays_identically(world):
    house, day, history = world
    short = day.window(day.start, day.start + pd.Timedelta(hours=6))
    check_controller(lambda: wrapper(RuleBasedController(house), house, history), house, short)


def test_the_scorecard_of_perfect_forecasts_is_zero(world):
    from twin.scenario import PerfectForecasts

    house, day, _ = world
    scored = ScoredController(RuleBasedController(house))
    simulate(house, day.with_forecasts(PerfectForecasts()), scored, RunSettings())
    table = scored.scorecard.table()
    assert table.loc[("base_load_kw", "0-6 h"), "n"] > 0
    assert table["mae"].max() == pytest.approx(0.0, abs=1e-12)
