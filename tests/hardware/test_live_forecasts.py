"""Forecasts on the house clock: the simulation's own forecasts against the emulator; the calendar
replay (same weekday and local time of day) for a real house."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from hardware.errors import LiveError
from hardware.plant.forecasts import ScenarioForecasts
from twin.config import reference_house
from twin.house import SimHouse
from twin.registry import load_scenario

HOUSE = reference_house()
PRAGUE = ZoneInfo("Europe/Prague")


@pytest.fixture(scope="module")
def week():
    return load_scenario("winter-week-v1")


def test_at_the_scenarios_own_dates_it_is_what_simulation_shows(week):
    day = week.window(week.start, week.start + pd.Timedelta(days=1))
    source = ScenarioForecasts(HOUSE, day, 48 * 3600.0)
    twin = SimHouse(HOUSE, day)
    for t in (0.0, 3600.0 * 7 + 300, 86400.0 - 300):
        twin.advance_to(t)
        expected = twin.observe()
        got = source.outlook(expected.time)
        assert got.forecast.start == expected.forecast.start
        pd.testing.assert_frame_equal(got.forecast.as_frame(), expected.forecast.as_frame())
        assert np.array_equal(got.comfort_lower_c, expected.comfort_lower_c)
        assert got.import_price_per_kwh == expected.import_price_per_kwh
        assert got.outdoor_temp_c == expected.outdoor_temp_c
    with pytest.raises(LiveError, match="outside the forecast scenario"):
        source.outlook(day.end.to_pydatetime())


def test_on_the_calendar_the_same_weekday_and_local_time(week):
    source = ScenarioForecasts(HOUSE, week, 48 * 3600.0, calendar=True)
    assert source.end is None, "a real house runs on for ever"
    for when in (datetime(2026, 11, 21, 10, 7, tzinfo=PRAGUE), datetime(2026, 7, 15, 6, 40, tzinfo=PRAGUE)):
        mapped = source.scenario_time(when)
        assert week.start <= mapped < week.end
        assert (mapped.weekday(), mapped.hour, mapped.minute) == (when.weekday(), when.hour, when.minute), \
            "summer time maps to the same local hour of a winter week"
        outlook = source.outlook(when)
        step = week.index.get_indexer([pd.Timestamp(mapped).floor("15min")])[0]
        assert outlook.import_price_per_kwh == week.data["import_price_per_kwh"].iloc[step]
        assert outlook.forecast.start == when.replace(minute=when.minute // 15 * 15), "forecast steps on today's clock"


def test_a_scenario_shorter_than_a_week_cannot_stand_for_every_date(week):
    day = week.window(week.start, week.start + pd.Timedelta(days=1))
    with pytest.raises(LiveError, match="must cover at least a week"):
        ScenarioForecasts(HOUSE, day, 48 * 3600.0, calendar=True)
