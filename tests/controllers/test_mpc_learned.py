"""mpc-learned: the MPC with forecasts learned from the scenario's past, in the runner and in ``pems bench``.

Real solver (HiGHS) and real forecasters, on a few hours of the bundled French home after 15 days
of its history, with the light MPC settings of the bench tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from benchmarks.bench import BenchSpec, check_spec, run_pair, write_bench
from benchmarks.cli import register
from controllers.mpc_learned import LearnedMpc, make_mpc_learned
from twin.config import reference_house
from twin.errors import RegistryError, ScenarioError
from twin.registry import ControllerContext, controller_entry, make_controller
from twin.runner import RunSettings, simulate
from twin.window import window_and_history

SCENARIO = "fr-home-2024-v1"
START = "2024-03-16"  # 15 days after the scenario's start: enough history to train on
LIGHT = {"replan_interval_s": "3600", "blocks": "900:7200,3600:43200"}


@pytest.fixture(scope="module")
def window():
    return window_and_history(SCENARIO, START, 4 / 24)


class Spy:
    """Wraps the MPC, keeping every observation it is handed (to compare its forecasts)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.seen = []

    def decide(self, obs):
        self.seen.append(obs)
        return self.inner.decide(obs)

    def plan_frame(self):
        return self.inner.plan_frame()


def test_mpc_learned_runs_through_the_runner_on_learned_forecasts(window):
    world, history = window
    house = reference_house()
    assert history.index[-1] < world.start and world.start == pd.Timestamp(START, tz=world.tz)
    controller = make_controller("mpc-learned",
                                 ControllerContext(house, world, 300.0, options=LIGHT, history=history))
    assert isinstance(controller, LearnedMpc)
    spy = Spy(controller.inner)
    controller.inner = spy
    result = simulate(house, world, controller, RunSettings(), controller_name="mpc-learned")
    assert len(result.log) == 4 * 12
    assert result.log["plan_status"].str.endswith("[forecasts=learned]").all()
    assert result.kpis["cycles_without_plan"] == 0
    assert controller.fits == 1, "trained once, on the history before the window"
    assert len(controller.plan_frame()) == 4  # hourly re-plans
    first = spy.seen[0]
    issued = world.forecasts.issue(_actuals(house, world), 0, first.forecast.horizon_steps)
    assert not np.allclose(first.forecast.base_load_kw, issued["base_load_kw"]), "load: learned, not the scenario's"
    np.testing.assert_array_equal(first.forecast.outdoor_temp_c, issued["outdoor_temp_c"])  # weather: as issued
    card = controller.scorecard.table()
    assert card.loc[("base_load_kw", "0-6 h"), "n"] > 0


def _actuals(house, world):
    from twin.house import SimHouse

    return SimHouse(house, world).exo.series


def test_the_bench_writes_the_scorecard_of_the_learned_forecasts(window, tmp_path):
    spec = BenchSpec(scenarios=(SCENARIO,), controllers=("mpc-learned",), out=tmp_path / "out", options=LIGHT,
                     start=START, days=4 / 24, plots=False)
    check_spec(spec)
    pair = run_pair(SCENARIO, "mpc-learned", spec)
    write_bench(spec, [pair])
    card = pd.read_csv(spec.out / "runs" / SCENARIO / "mpc-learned" / "forecast_scorecard.csv")
    assert list(card.columns) == ["field", "lead", "n", "mae", "rmse", "bias"]
    load = card[(card["field"] == "base_load_kw") & (card["lead"] == "0-6 h")].iloc[0]
    assert load["n"] > 0 and load["mae"] > 0
    assert (spec.out / "runs" / SCENARIO / "mpc-learned" / "plans.csv").is_file()
    report = (spec.out / "report.md").read_text(encoding="utf-8")
    assert f"## Forecast scorecard: {SCENARIO}" in report and "mpc-learned · base load [kW]" in report
    assert "Run windows: fr-home-2024-v1 2024-03-16T00:00:00+01:00" in report


def test_without_history_it_fails_naming_the_scenario():
    world, history = window_and_history(SCENARIO)  # from the first recorded row: nothing before it
    assert history is None
    house = reference_house()
    with pytest.raises(RegistryError, match=f"'mpc-learned' trains on the data before the run, and scenario "
                                            f"'{SCENARIO}' has none"):
        make_controller("mpc-learned", ControllerContext(house, world, options=LIGHT))
    short, history = window_and_history(SCENARIO, "2024-03-04", 1.0)  # 3 days: too few to train on
    with pytest.raises(ScenarioError, match=f"scenario '{SCENARIO}' has 3.0 days of data before the run, its "
                                            f"forecasters need 14"):
        make_mpc_learned(ControllerContext(house, short, options=LIGHT, history=history))
    assert controller_entry("mpc-learned").needs_history and not controller_entry("mpc").needs_history


def test_pems_bench_refuses_mpc_learned_without_history_in_one_line(tmp_path):
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["bench", "--scenarios", SCENARIO, "--controllers", "mpc,mpc-learned",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"scenario '{SCENARIO}' has none before its start" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
