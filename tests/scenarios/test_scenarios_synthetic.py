"""Synthetic scenario generator (scenarios.synthetic): determinism, DST, physical plausibility."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import time
from importlib import resources
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pvlib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from scenarios.calendar import scenario_index
from scenarios.catalog import load_spec
from scenarios.synthetic import generate
from scenarios.synthetic_spec import (
    ClimateParams,
    ComfortScheduleParams,
    EvParams,
    LoadParams,
    SyntheticSpec,
)
from twin.config import ComfortMode
from twin.errors import ConfigError, ScenarioError
from twin.scenario import REQUIRED_COLUMNS, EvSession, Scenario, validate_data, validate_sessions

PRAGUE_TZ = "Europe/Prague"
# Prague monthly mean temperatures [°C] as given in the project brief (climate normal).
PRAGUE_CLIMATE_C = np.array([-0.5, 1.0, 4.5, 9.5, 14.0, 17.5, 19.5, 19.0, 14.5, 9.5, 4.5, 1.0])
COLUMNS = ["outdoor_temp_c", "ghi_w_m2", "dni_w_m2", "dhi_w_m2", "base_load_kw", "import_price_per_kwh",
           "export_price_per_kwh", "comfort_mode", "wind_speed_m_s"]


def week(seed: int = 1, start: dt.date = dt.date(2024, 2, 5), days: int = 7, **kw) -> SyntheticSpec:
    return SyntheticSpec(name="test-week-v1", start=start, days=days, seed=seed, **kw)


@pytest.fixture(scope="module")
def year() -> tuple[Scenario, float]:
    spec = load_spec(resources.files("scenarios").joinpath("specs", "year-v1.toml"))
    t0 = time.perf_counter()
    scenario = generate(spec)
    return scenario, time.perf_counter() - t0


@pytest.fixture(scope="module")
def dst_scenario() -> Scenario:
    """Saturday 30 March .. Tuesday 29 October 2024: both DST changes of 2024 inside."""
    return generate(SyntheticSpec(name="dst-v1", start=dt.date(2024, 3, 30), days=213, seed=7))


@pytest.fixture(scope="module")
def more_years() -> list[Scenario]:
    specs = [SyntheticSpec(name="y-v1", start=dt.date(2024, 1, 1), days=366, seed=s) for s in (11, 12)]
    return [generate(spec) for spec in specs]


def local_frame(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Local calendar fields via pandas' own accessors (independent of the generator's arithmetic)."""
    return pd.DataFrame({"date": index.date, "hour": index.hour, "minute": index.minute,
                         "weekday": index.day_of_week}, index=index)


# -- determinism -----------------------------------------------------------------------

def test_same_seed_same_scenario():
    a, b = generate(week(seed=3)), generate(week(seed=3))
    pd.testing.assert_frame_equal(a.data, b.data)
    assert a.ev_sessions == b.ev_sessions
    assert a.metadata == b.metadata


def test_explicit_generator_is_used_and_reproducible():
    a = generate(week(seed=3), rng=np.random.default_rng(99))
    b = generate(week(seed=3), rng=np.random.default_rng(99))
    c = generate(week(seed=3))
    pd.testing.assert_frame_equal(a.data, b.data)
    assert not np.allclose(a.data["outdoor_temp_c"], c.data["outdoor_temp_c"])
    assert a.metadata["seed"] == "external generator"


def test_different_seed_different_scenario():
    a, b = generate(week(seed=3)), generate(week(seed=4))
    for column in ("outdoor_temp_c", "ghi_w_m2", "base_load_kw", "wind_speed_m_s"):
        assert not np.allclose(a.data[column], b.data[column]), column
    assert [s.departure for s in a.ev_sessions] != [s.departure for s in b.ev_sessions]
    # Prices and the comfort schedule are not random.
    pd.testing.assert_series_equal(a.data["import_price_per_kwh"], b.data["import_price_per_kwh"])
    pd.testing.assert_series_equal(a.data["comfort_mode"], b.data["comfort_mode"])


def test_global_random_state_is_neither_used_nor_touched():
    # The legacy global API is used on purpose: to prove the generator never touches it.
    np.random.seed(0)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = generate(week(seed=5))
    assert (np.random.get_state()[1] == before).all()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    b = generate(week(seed=5))
    pd.testing.assert_frame_equal(a.data, b.data)


def test_metadata_records_the_spec_and_provenance_the_prices():
    spec = week(seed=42)
    scenario = generate(spec)
    meta = scenario.metadata
    assert meta["seed"] == "42" and meta["spec_version"] == "1" and meta["generator"] == "scenarios.synthetic"
    assert json.loads(meta["spec"])["seed"] == 42
    assert json.loads(meta["spec"])["start"] == "2024-02-05"
    assert all(isinstance(v, str) for v in meta.values())
    assert "OTE" in scenario.provenance and "not real forecasts" in scenario.provenance
    assert scenario.initial_room_temp_c is None and scenario.initial_battery_soc is None


# -- shape and index -------------------------------------------------------------------

def test_columns_and_index(year):
    scenario, _ = year
    assert list(scenario.data.columns) == COLUMNS
    assert set(REQUIRED_COLUMNS) <= set(scenario.data.columns)
    index = scenario.index
    assert str(index.tz) == PRAGUE_TZ
    assert index.freq == pd.Timedelta(minutes=15)
    assert index.unit == "ns"
    assert (np.diff(index.asi8) == 15 * 60 * 10**9).all()  # fixed step in absolute time
    assert index[0] == pd.Timestamp("2024-01-01 00:00", tz=PRAGUE_TZ)
    assert scenario.end == pd.Timestamp("2025-01-01 00:00", tz=PRAGUE_TZ)
    assert len(index) == 366 * 96
    validate_data(scenario.data, scenario.name)


@pytest.mark.parametrize("step_minutes", [5, 30, 60])
def test_other_steps(step_minutes):
    scenario = generate(week(days=2, step_minutes=step_minutes))
    assert len(scenario.data) == 2 * 24 * 60 // step_minutes
    assert scenario.step_s == step_minutes * 60


def test_year_generates_fast(year):
    _, seconds = year
    assert seconds < 2.0, f"year-v1 took {seconds:.2f} s"


# -- DST -------------------------------------------------------------------------------

def test_steps_per_local_day_across_dst(dst_scenario):
    per_day = pd.Series(1, index=dst_scenario.index).groupby(dst_scenario.index.date).sum()
    assert per_day[dt.date(2024, 3, 31)] == 23 * 4
    assert per_day[dt.date(2024, 10, 27)] == 25 * 4
    others = per_day.drop([dt.date(2024, 3, 31), dt.date(2024, 10, 27)])
    assert (others == 96).all() and len(others) == 211
    assert dst_scenario.end == pd.Timestamp("2024-10-29 00:00", tz=PRAGUE_TZ)


def test_comfort_schedule_is_local_time(dst_scenario):
    cal = local_frame(dst_scenario.index)
    mode = dst_scenario.data["comfort_mode"].to_numpy()
    h = cal["hour"] + cal["minute"] / 60.0
    wd = cal["weekday"]
    weekend = wd >= 5
    wake = np.where(weekend, 8.0, 6.0)
    night_start = np.where(wd.isin([4, 5]), 23.0, 22.0)
    expected = np.where((h < wake) | (h >= night_start), ComfortMode.NIGHT, ComfortMode.DAY)
    expected = np.where(~weekend & (h >= 8.5) & (h < 15.5), ComfortMode.AWAY, expected)
    assert (mode == expected).all()
    # Spot checks on the DST days themselves (Sunday 31 March, Sunday 27 October).
    at = dst_scenario.data["comfort_mode"]
    assert at[pd.Timestamp("2024-03-31 07:45", tz=PRAGUE_TZ)] == ComfortMode.NIGHT
    assert at[pd.Timestamp("2024-03-31 08:00", tz=PRAGUE_TZ)] == ComfortMode.DAY
    assert at[pd.Timestamp("2024-04-01 08:30", tz=PRAGUE_TZ)] == ComfortMode.AWAY  # Monday, summer time
    assert at[pd.Timestamp("2024-10-28 06:00", tz=PRAGUE_TZ)] == ComfortMode.DAY  # Monday, winter time
    assert at[pd.Timestamp("2024-10-28 05:45", tz=PRAGUE_TZ)] == ComfortMode.NIGHT


def raw_price_rows() -> list[tuple[pd.Timestamp, float]]:
    """(start of the hour, EUR/kWh) per raw CSV row; ``hour`` = hours since local midnight."""
    path = resources.files("scenarios").joinpath("data", "ote_cz_dayahead_2024.csv")
    tz = ZoneInfo(PRAGUE_TZ)
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            midnight = dt.datetime.fromisoformat(r["date"]).replace(tzinfo=tz).astimezone(dt.UTC)
            rows.append((pd.Timestamp(midnight + dt.timedelta(hours=int(r["hour"]))),
                         float(r["price_eur_mwh"]) / 1000.0))
    return rows


def test_prices_on_the_right_local_hours(dst_scenario):
    tariff = json.loads(dst_scenario.metadata["spec"])["tariff"]
    data = dst_scenario.data
    utc_index = data.index.tz_convert("UTC")
    rows = [(start, spot) for start, spot in raw_price_rows() if utc_index[0] <= start <= utc_index[-1]]
    assert len(rows) == 213 * 24 - 1  # every hour but the missing 25th hour of 27 October
    starts = pd.DatetimeIndex([start for start, _ in rows])
    spot = np.array([s for _, s in rows])
    for quarter in range(4):  # each of the hour's four steps carries the hour's price
        position = utc_index.get_indexer(starts + pd.Timedelta(minutes=15 * quarter))
        assert (position >= 0).all()
        export = data["export_price_per_kwh"].to_numpy()[position]
        assert_allclose(export, spot - tariff["export_fee_per_kwh"], atol=1e-12)
        expected_import = (spot + tariff["supplier_margin_per_kwh"] + tariff["network_fee_per_kwh"]) * (
            1 + tariff["vat_rate"])
        assert_allclose(data["import_price_per_kwh"].to_numpy()[position], expected_import, atol=1e-12)


def test_missing_fall_back_hour_filled_in_scenario(dst_scenario):
    export = dst_scenario.data["export_price_per_kwh"]
    filled = export[pd.Timestamp("2024-10-27 23:00+01:00"):pd.Timestamp("2024-10-27 23:45+01:00")]
    assert len(filled) == 4
    assert_allclose(filled, 0.11442 - 0.01)  # raw 2024-10-27 hour 23 (22:00 CET) = 114.42 EUR/MWh
    assert "2024-10-27 23:00:00+01:00" in dst_scenario.metadata["price_filled_hours"]


def test_ev_sessions_follow_local_time_across_dst(dst_scenario):
    weekday_departures = [s.departure for s in dst_scenario.ev_sessions
                          if s.departure.weekday() < 5 and s.departure != dst_scenario.end]
    hours = np.array([d.hour + d.minute / 60 for d in weekday_departures])
    assert len(hours) > 100
    assert abs(hours.mean() - 7.25) < 0.1  # local wall clock, in summer time as in winter time
    assert ((hours > 6.0) & (hours < 8.5)).all()


# -- physical plausibility -------------------------------------------------------------

def monthly_mean(scenario: Scenario, column: str) -> np.ndarray:
    series = scenario.data[column]
    return series.groupby(series.index.month).mean().to_numpy()


def test_monthly_mean_temperature_near_prague_climate(year, more_years):
    scenarios = [year[0], *more_years]
    means = np.mean([monthly_mean(s, "outdoor_temp_c") for s in scenarios], axis=0)
    assert np.abs(means - PRAGUE_CLIMATE_C).max() < 1.5, np.round(means, 1)
    annual = np.mean([s.data["outdoor_temp_c"].mean() for s in scenarios])
    assert abs(annual - PRAGUE_CLIMATE_C.mean()) < 0.6
    temp = year[0].data["outdoor_temp_c"]
    assert -25.0 < temp.min() and temp.max() < 38.0


def test_no_temperature_ramps_at_midnight(year):
    temp = year[0].data["outdoor_temp_c"]
    jumps = np.abs(np.diff(temp.to_numpy()))
    assert jumps.max() < 2.5  # K per 15 min: day-to-day weather changes must be smooth


def test_diurnal_cycle_peaks_in_the_afternoon(year):
    temp = year[0].data["outdoor_temp_c"]
    summer = temp[(temp.index.month >= 6) & (temp.index.month <= 8)]
    profile = summer.groupby(summer.index.hour).mean()
    assert 14 <= profile.idxmax() <= 17  # ~15:00 solar ≈ 16:00 CEST
    assert 3 <= profile.idxmin() <= 7
    assert 6.0 < profile.max() - profile.min() < 14.0


def daily_clearness(scenario: Scenario) -> pd.Series:
    """Daily GHI / clear-sky GHI with pvlib (independent turbidity: the test's own choice)."""
    index = scenario.index
    mid = index + pd.Timedelta(minutes=7.5)
    site = pvlib.location.Location(50.08, 14.42, tz=PRAGUE_TZ, altitude=250)
    clear = site.get_clearsky(mid, model="ineichen", linke_turbidity=3.5)["ghi"].to_numpy()
    frame = pd.DataFrame({"ghi": scenario.data["ghi_w_m2"].to_numpy(), "clear": clear}, index=index)
    per_day = frame.groupby(index.date).sum()
    return per_day["ghi"] / per_day["clear"]


def test_clear_days_colder_in_winter_warmer_in_summer(year, more_years):
    colder, warmer = [], []
    for scenario in (year[0], *more_years):
        kc = daily_clearness(scenario)
        temp = scenario.data["outdoor_temp_c"]
        by_day = temp.groupby(temp.index.date)
        night = temp[(temp.index.hour < 6)].groupby(temp[(temp.index.hour < 6)].index.date).mean()
        day_max = by_day.max()
        months = pd.Series([d.month for d in kc.index], index=kc.index)
        for months_set, target, out in (({12, 1, 2}, night, colder), ({6, 7, 8}, day_max, warmer)):
            sel = kc[months.isin(months_set)]
            clear = sel[sel >= sel.quantile(2 / 3)].index
            cloudy = sel[sel <= sel.quantile(1 / 3)].index
            out.append(target[clear].mean() - target[cloudy].mean())
    assert np.mean(colder) < -1.0, colder  # clear winter nights colder
    assert np.mean(warmer) > 1.0, warmer  # clear summer days warmer


def test_irradiance_within_clear_sky_and_closed(year):
    scenario, _ = year
    data = scenario.data
    mid = scenario.index + pd.Timedelta(minutes=7.5)
    site = pvlib.location.Location(50.08, 14.42, tz=PRAGUE_TZ, altitude=250)
    solpos = site.get_solarposition(mid)
    # An upper envelope: a very clean atmosphere (Linke turbidity 2) with 10 % cloud enhancement.
    envelope = site.get_clearsky(mid, model="ineichen", solar_position=solpos, linke_turbidity=2.0)
    ghi, dni, dhi = (data[c].to_numpy() for c in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"))
    assert (ghi >= 0).all() and (dni >= 0).all() and (dhi >= 0).all()
    assert (ghi <= envelope["ghi"].to_numpy() * 1.1 + 1e-9).all()
    assert (dni <= envelope["dni"].to_numpy() * 1.1 + 1e-9).all()
    cos_z = np.clip(np.cos(np.radians(solpos["zenith"].to_numpy())), 0, None)
    assert_allclose(dni * cos_z + dhi, ghi, atol=1.0)
    night = solpos["zenith"].to_numpy() > 91.0
    assert (ghi[night] == 0).all()
    annual_kwh_m2 = ghi.sum() * 0.25 / 1000.0
    assert 900.0 < annual_kwh_m2 < 1300.0  # Prague: roughly 1,000-1,150 kWh/m² a year
    summer, winter = monthly_mean(scenario, "ghi_w_m2")[[5, 6]].mean(), monthly_mean(scenario, "ghi_w_m2")[
        [0, 11]].mean()
    assert summer > 4 * winter


def test_base_load_plausible(year, more_years):
    for scenario in (year[0], *more_years):
        load = scenario.data["base_load_kw"]
        assert (load >= 0).all()
        annual_kwh = load.sum() * 0.25
        assert 3000.0 <= annual_kwh <= 4000.0
        assert load.max() < 6.0
    load = year[0].data["base_load_kw"]
    cal = local_frame(load.index)
    evening = load[(cal["hour"] >= 18) & (cal["hour"] < 21)].mean()
    small_hours = load[(cal["hour"] >= 2) & (cal["hour"] < 5)].mean()
    morning = load[(cal["weekday"] < 5) & (cal["hour"] == 7)].mean()
    weekday_noon = load[(cal["weekday"] < 5) & (cal["hour"] >= 10) & (cal["hour"] < 14)].mean()
    weekend_noon = load[(cal["weekday"] >= 5) & (cal["hour"] >= 10) & (cal["hour"] < 14)].mean()
    assert evening > 2.5 * small_hours
    assert morning > 1.5 * weekday_noon  # a morning peak on weekdays
    assert weekend_noon > 1.5 * weekday_noon  # nobody home on weekday noons
    months = monthly_mean(year[0], "base_load_kw")
    assert months[[0, 11]].mean() > 1.1 * months[[5, 6]].mean()  # a bit more in winter


def test_wind_plausible(year):
    wind = year[0].data["wind_speed_m_s"]
    assert (wind >= 0).all() and wind.max() < 40
    assert 2.0 < wind.mean() < 5.5


def check_sessions(scenario: Scenario) -> None:
    sessions = scenario.ev_sessions
    validate_sessions(sessions, scenario.index, scenario.name)
    assert sessions, "a commuter car should have sessions"
    assert sessions[0].arrival == scenario.start  # the car is at home at the start
    assert sessions[-1].departure <= scenario.end
    for s in sessions:
        assert isinstance(s, EvSession)
        assert s.capacity_kwh == 60.0 and s.target_soc == 0.8
        assert 0.05 <= s.arrival_soc <= 1.0
    for before, after in zip(sessions, sessions[1:], strict=False):
        assert after.arrival > before.departure


def test_ev_sessions_year(year):
    scenario, _ = year
    check_sessions(scenario)
    sessions = scenario.ev_sessions
    assert sessions[-1].departure == scenario.end  # home on New Year's Eve: clipped at the end
    # Energy used on each trip, given that the car left at max(arrival SOC, target).
    used = [(max(a.arrival_soc, a.target_soc) - b.arrival_soc) * a.capacity_kwh
            for a, b in zip(sessions, sessions[1:], strict=False)]
    months = [b.arrival.month for b in sessions[1:]]
    weekday = [b.arrival.weekday() < 5 for b in sessions[1:]]
    commute = np.array([u for u, w in zip(used, weekday, strict=True) if w])
    assert commute.min() >= 6.0 - 1e-9 and commute.max() <= 18.0 + 1e-9
    winter = np.mean([u for u, m, w in zip(used, months, weekday, strict=True) if w and m in (12, 1, 2)])
    summer = np.mean([u for u, m, w in zip(used, months, weekday, strict=True) if w and m in (6, 7, 8)])
    assert winter > summer + 3.0
    returns = np.array([b.arrival.hour + b.arrival.minute / 60
                        for b, w in zip(sessions[1:], weekday, strict=True) if w])
    assert abs(np.median(returns) - 17.5) < 0.25
    weekend_trips = sum(1 for b in sessions[1:] if b.arrival.weekday() >= 5)
    assert 20 < weekend_trips < 90  # about half of ~105 weekend days


def test_ev_can_be_disabled():
    scenario = generate(week(ev=EvParams(enabled=False)))
    assert scenario.ev_sessions == ()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), start=st.dates(dt.date(2024, 1, 1), dt.date(2024, 12, 28)),
       days=st.integers(1, 4))
def test_any_short_scenario_is_valid(seed, start, days):
    days = min(days, (dt.date(2025, 1, 1) - start).days)
    scenario = generate(SyntheticSpec(name="h-v1", start=start, days=days, seed=seed))
    validate_data(scenario.data, scenario.name)
    check_sessions(scenario)
    assert scenario.start == pd.Timestamp(start).tz_localize(PRAGUE_TZ)
    assert set(np.unique(scenario.data["comfort_mode"])) <= {0, 1, 2}
    assert (scenario.data["base_load_kw"] >= 0).all()


# -- spec validation -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: week(days=0), r"days = 0 is outside the allowed range \[1, 3660\]"),
        (lambda: week(step_minutes=7), r"step_minutes = 7 is not one of \[1, 2, 3"),
        (lambda: week(seed=-1), r"seed = -1 is outside the allowed range"),
        (lambda: week(seed=1.5), r"seed = 1.5 must be an integer"),
        (lambda: SyntheticSpec(name=""), r"name = '' must be a non-empty string"),
        (lambda: ClimateParams(monthly_mean_temp_c=(1.0, 2.0)),
         r"monthly_mean_temp_c = \(1.0, 2.0\) must be a list of 12 numbers"),
        (lambda: ClimateParams(regime_transitions_winter=(0.5,) * 9), r"regime_transitions_winter = .* each "
                                                                      r"summing to 1"),
        (lambda: ClimateParams(max_clear_sky_index=2.0), r"max_clear_sky_index = 2.0 is outside the allowed "
                                                         r"range \[1.0, 1.5\]"),
        (lambda: LoadParams(annual_energy_kwh=50.0), r"annual_energy_kwh = 50.0 is outside"),
        (lambda: EvParams(departure_hour=18.0), r"return_hour = 17.5 must be at least 30 min after "
                                                r"departure_hour = 18.0"),
        (lambda: EvParams(commute_energy_max_kwh=80.0),
         r"commute_energy_max_kwh = 80.0 exceeds capacity_kwh"),
        (lambda: ComfortScheduleParams(away_end_hour=23.0),
         r"away_start_hour = 8.5 .. away_end_hour = 23.0 must lie within"),
    ],
)
def test_spec_validation_names_field_value_and_range(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_specs_are_frozen():
    spec = week()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3  # type: ignore[misc]


def test_outside_price_data_is_an_error():
    with pytest.raises(ScenarioError, match=r"no day-ahead price for 2023-12-31 00:00:00\+01:00"):
        generate(week(start=dt.date(2023, 12, 31), days=2))
    with pytest.raises(ScenarioError, match=r"no day-ahead price for 2025-01-01 00:00:00\+01:00"):
        generate(week(start=dt.date(2024, 12, 31), days=2))


def test_scenario_index_helper():
    index = scenario_index(dt.date(2024, 3, 31), 1, 15, PRAGUE_TZ)
    assert len(index) == 92 and index.freq == pd.Timedelta(minutes=15)
    index = scenario_index(dt.date(2024, 10, 27), 1, 60, PRAGUE_TZ)
    assert len(index) == 25
    assert index[2].hour == index[3].hour == 2  # the repeated hour, twice
