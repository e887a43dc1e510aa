"""Every registered controller and scenario is held to the contracts (like gymnasium's check_env)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from builders import small_house

from twin.config import HouseConfig, load_house, reference_house
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
    "mpc-stochastic": {"replan_interval_s": "3600", "blocks": "900:3600,3600:21600", "scenarios": "3"},
}

HOUSE_FILES = sorted((Path(__file__).parents[2] / "scenarios" / "historical" / "houses").glob("*.toml"))


def houses() -> dict[str, HouseConfig]:
    """Every bundled house and generated ones covering what a house may lack or have."""
    found = {"reference": reference_house()}
    found.update({path.stem: load_house(path) for path in HOUSE_FILES})
    found.update({
        "no-rooms": small_house(n_rooms=0),
        "no-battery": small_house(battery=False),
        "no-ev": small_house(ev=False),
        "no-pv": small_house(pv_kw=0.0),
        "one-room": small_house(n_rooms=1),
        "two-node-rooms": small_house(n_rooms=2, two_node=True),
        "bare": small_house(n_rooms=0, battery=False, ev=False, pv_kw=0.0),
    })
    return found


HOUSES = houses()


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


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("house_name", sorted(HOUSES))
def test_every_controller_runs_on_every_house(controller, house_name):
    """Two hours of a winter day on each house (the reference house's full day is tested above)."""
    house = HOUSES[house_name]
    full = load_scenario("winter-week-v1")
    start = full.start + pd.Timedelta(hours=7)
    window = full.window(start, start + pd.Timedelta(hours=2))
    entry = controller_entries()[controller]
    options = LIGHT_OPTIONS.get(controller, {})
    check_controller(lambda: entry.make(ControllerContext(house, window, 300.0, seed=7, options=options)), house,
                     window)


@pytest.mark.slow
@pytest.mark.parametrize("controller", HISTORY_CONTROLLERS)
@pytest.mark.parametrize("house_name", sorted(HOUSES))
def test_history_trained_controller_runs_on_every_house(controller, house_name):
    house = HOUSES[house_name]
    full = load_scenario("fr-home-2024-v1")
    start = full.start + pd.Timedelta(days=15)
    window = full.window(start, start + pd.Timedelta(hours=2))
    history = full.data[full.index < start]
    entry = controller_entries()[controller]
    options = LIGHT_OPTIONS.get(controller, {})
    check_controller(lambda: entry.make(ControllerContext(house, window, 300.0, seed=7, options=options,
                                                          history=history)), house, window)


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
