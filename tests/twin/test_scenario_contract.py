"""Scenario contract: validation errors name column and row; windows keep cars and forecasts aligned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import simple_scenario

from twin.config import reference_house
from twin.errors import ScenarioError
from twin.house import SimHouse
from twin.registry import load_scenario
from twin.scenario import Scenario


def test_validation_names_column_and_row():
    good = simple_scenario(days=1, sessions=False)
    data = good.data.copy()
    data.iloc[7, data.columns.get_loc("base_load_kw")] = np.nan
    with pytest.raises(ScenarioError, match=r"column 'base_load_kw' row 7 \(2024-01-15 01:45:00\+01:00\) = nan"):
        Scenario("bad", data, good.forecasts)
    data = good.data.drop(columns=["comfort_mode"])
    with pytest.raises(ScenarioError, match=r"missing required column\(s\) \['comfort_mode'\]"):
        Scenario("bad", data, good.forecasts)
    data = good.data.iloc[[0, 1, 3, 4]]
    with pytest.raises(ScenarioError, match=r"not evenly spaced at row 2"):
        Scenario("bad", data, good.forecasts)
    data = good.data.tz_localize(None)
    with pytest.raises(ScenarioError, match="timezone-aware"):
        Scenario("bad", data, good.forecasts)


def test_window_keeps_the_car_at_home_and_forecasts_aligned():
    house = reference_house()
    week = load_scenario("winter-week-v1")
    # a window starting at midnight, when the commuter's car is plugged in
    start = week.start + pd.Timedelta(days=2)
    window = week.window(start, start + pd.Timedelta(days=1))
    assert any(s.arrival == start for s in window.ev_sessions), "the session under way at the start is kept"
    assert SimHouse(house, window).observe().ev_connected

    full_twin, window_twin = SimHouse(house, week), SimHouse(house, window)
    step = int(pd.Timedelta(hours=5) / pd.Timedelta(seconds=week.step_s))
    offset = int((start - week.start) / pd.Timedelta(seconds=week.step_s))
    from_full = week.forecasts.issue(full_twin.exo.series, offset + step, 24)
    from_window = window.forecasts.issue(window_twin.exo.series, step, 24)
    for key in ("outdoor_temp_c", "import_price_per_kwh", "base_load_kw"):
        np.testing.assert_allclose(from_window[key], from_full[key], err_msg=key)
