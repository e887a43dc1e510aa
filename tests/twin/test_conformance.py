"""Every registered controller and scenario is held to the contracts (like gymnasium's check_env)."""

from __future__ import annotations

import pandas as pd
import pytest

from twin.config import reference_house
from twin.conformance import ConformanceError, check_controller, check_scenario
from twin.contracts import Command
from twin.registry import ControllerContext, controller_entries, load_scenario, scenario_entries

SCENARIOS = sorted(scenario_entries())
CONTROLLERS = sorted(n for n, e in controller_entries().items() if not e.needs_history)
#: Controllers that train on the data before the run: held to the contract on a historical
#: scenario, after enough of its past to train on.
HISTORY_CONTROLLERS = sorted(n for n, e in controller_entries().items() if e.needs_history)
#: Lighter (still real) settings for slow controllers, so that a day runs in seconds: the MPC
#: re-plans hourly over a 6 h horizon here.
LIGHT_OPTIONS = {
    "mpc": {"replan_interval_s": "3600", "blocks": "900:3600,3600:21600"},
    "oracle": {"replan_interval_s": "3600", "blocks": "900:3600,3600:21600"},
    "mpc-learned": {"replan_interval_s": "3600", "blocks": "900:3600,3600:21600"},
}


def test_registries_are_not_empty():
    assert "rule-based" in CONTROLLERS
    assert {"winter-week-v1", "spring-week-v1", "summer-week-v1", "year-v1"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_conforms(name):
    scenario = load_scenario(name)
    assert name.rsplit("-v", 1)[-1].isdigit(), "scenario names carry a version"
    check_scenario(scenario, reference_house())


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("scenario_name", ["winter-week-v1", "summer-week-v1"])
def test_controller_conforms(controller, scenario_name):
    house = reference_house()
    full = load_scenario(scenario_name)
    day = full.window(full.start, full.start + pd.Timedelta(days=1))
    entry = controller_entries()[controller]
    options = LIGHT_OPTIONS.get(controller, {})
    check_controller(lambda: entry.make(ControllerContext(house, day, 300.0, seed=7, options=options)), house, day)


@pytest.mark.parametrize("controller", HISTORY_CONTROLLERS)
def test_history_trained_controller_conforms(controller):
    house = reference_house()
    full = load_scenario("fr-home-2024-v1")
    start = full.start + pd.Timedelta(days=15)
    window = full.window(start, start + pd.Timedelta(hours=6))
    history = full.data[full.index < start]
    entry = controller_entries()[controller]
    options = LIGHT_OPTIONS.get(controller, {})
    check_controller(lambda: entry.make(ControllerContext(house, window, 300.0, seed=7, options=options,
                                                          history=history)), house, window)


def test_the_checker_catches_a_bad_controller():
    house = reference_house()
    full = load_scenario("winter-week-v1")
    day = full.window(full.start, full.start + pd.Timedelta(hours=3))

    class TooFewRelays:
        def decide(self, obs):
            return Command(until=obs.after(600), relay_on=(True,))

    class Nondeterministic:
        calls = 0

        def decide(self, obs):
            Nondeterministic.calls += 1
            return Command(until=obs.after(600), ev_power_kw=0.0 if Nondeterministic.calls % 7 else 11.0)

    with pytest.raises(ConformanceError, match="1 relay states for 16 rooms"):
        check_controller(TooFewRelays, house, day)
    with pytest.raises(ConformanceError, match="same seed, different runs"):
        check_controller(Nondeterministic, house, day)
