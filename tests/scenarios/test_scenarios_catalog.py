"""Named scenarios and spec files (scenarios.catalog), through the twin's registry too."""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.catalog import SPEC_TABLE, bundled_specs, catalog, load_spec, load_spec_file
from scenarios.forecast_errors import LeadTimeErrorForecasts
from twin.config import reference_house
from twin.conformance import check_scenario
from twin.errors import ScenarioError
from twin.registry import ScenarioEntry, load_scenario, scenario_entries
from twin.scenario import Scenario, validate_data, validate_sessions

TZ = "Europe/Prague"
SPECS = Path(str(resources.files("scenarios").joinpath("specs")))
# name -> (first local day, local day after the last, documented number of 15-min steps)
DOCUMENTED = {
    "winter-week-v1": (dt.date(2024, 1, 15), dt.date(2024, 1, 22), 672),
    "spring-week-v1": (dt.date(2024, 4, 8), dt.date(2024, 4, 15), 672),
    "summer-week-v1": (dt.date(2024, 7, 1), dt.date(2024, 7, 8), 672),
    "year-v1": (dt.date(2024, 1, 1), dt.date(2025, 1, 1), 35136),
}
MINIMAL = f"""
[{SPEC_TABLE}]
name = "tiny-v2"
version = 2
description = "two days"
start = 2024-05-06
days = 2
seed = 9
"""


def raw_spot_by_day() -> dict[dt.date, list[float]]:
    path = resources.files("scenarios").joinpath("data", "ote_cz_dayahead_2024.csv")
    days: dict[dt.date, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            days.setdefault(dt.date.fromisoformat(row["date"]), []).append(float(row["price_eur_mwh"]))
    return days


def test_catalog_lists_the_documented_scenarios():
    entries = catalog()
    assert all(isinstance(e, ScenarioEntry) for e in entries)
    assert sorted(e.name for e in entries) == sorted(DOCUMENTED)
    for entry in entries:
        assert len(entry.description) > 40, entry.name
    assert set(DOCUMENTED) <= set(scenario_entries())  # via the pems.scenarios entry point (others add theirs)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_named_scenario_validates_and_has_documented_length(name):
    first_day, end_day, steps = DOCUMENTED[name]
    scenario = load_scenario(name)
    assert isinstance(scenario, Scenario)
    assert scenario.name == name
    validate_data(scenario.data, name)
    validate_sessions(scenario.ev_sessions, scenario.index, name)
    assert len(scenario.data) == steps
    assert scenario.start == pd.Timestamp(first_day).tz_localize(TZ)
    assert scenario.end == pd.Timestamp(end_day).tz_localize(TZ)
    assert scenario.step_s == 900.0
    assert isinstance(scenario.forecasts, LeadTimeErrorForecasts)
    assert scenario.metadata["spec_version"] == name.rsplit("-v", 1)[1]
    assert scenario.description and "OTE" in scenario.provenance


def test_summer_week_has_the_most_negative_hours_of_the_summer():
    days = raw_spot_by_day()
    negative = {d: sum(p < 0 for p in prices) for d, prices in days.items()}
    summer_starts = [d for d in negative if dt.date(2024, 6, 1) <= d <= dt.date(2024, 8, 25)]
    window = {d: sum(negative[d + dt.timedelta(days=i)] for i in range(7)) for d in summer_starts}
    best = max(window.values())
    start = DOCUMENTED["summer-week-v1"][0]
    assert window[start] == best == 28  # 28: the count quoted in the spec's description
    scenario = load_scenario("summer-week-v1")
    fee = bundled_spec("summer-week-v1").tariff.export_fee_per_kwh
    spot = scenario.data["export_price_per_kwh"] + fee
    assert (spot < 0).sum() == best * 4  # four 15-min steps per negative hour
    assert f"{best} hours below zero" in scenario.description


def bundled_spec(name: str):
    return next(s for s in bundled_specs() if s.name == name)


def test_spec_files_match_their_names_and_readme():
    readme = (SPECS / "README.md").read_text(encoding="utf-8")
    assert "## Version History" in readme
    for spec in bundled_specs():
        assert (SPECS / f"{spec.name}.toml").is_file()
        assert spec.name.endswith(f"-v{spec.version}")
        assert f"`{spec.name}`" in readme
        assert spec.location.timezone == TZ and spec.step_minutes == 15
    year = bundled_spec("year-v1")
    assert (year.start, year.end) == (dt.date(2024, 1, 1), dt.date(2025, 1, 1))


def test_spec_file_and_catalog_give_the_same_scenario():
    from_file = load_spec_file(SPECS / "winter-week-v1.toml")
    from_catalog = load_scenario("winter-week-v1")
    pd.testing.assert_frame_equal(from_file.data, from_catalog.data)
    assert from_file.ev_sessions == from_catalog.ev_sessions


# -- load_spec_file ----------------------------------------------------------------------

def test_loader_declines_other_files(tmp_path):
    csv_file = tmp_path / "prices.csv"
    csv_file.write_text("a,b\n1,2\n")
    other_toml = tmp_path / "house.toml"
    other_toml.write_text('name = "house"\n[location]\nlatitude_deg = 50.0\n')
    not_toml = tmp_path / "notes.toml"
    not_toml.write_text("this is = = not toml [\n")
    assert load_spec_file(csv_file) is None
    assert load_spec_file(other_toml) is None
    assert load_spec_file(not_toml) is None
    assert load_spec_file(tmp_path / "missing.toml") is None


def test_loader_reads_a_spec_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(MINIMAL + "\n[synthetic_scenario.ev]\nenabled = false\n"
                    "\n[synthetic_scenario.climate]\nmonthly_mean_temp_c = [" + ", ".join(["30"] * 12) + "]\n"
                    "weather_noise_summer_k = 0.0\nweather_noise_winter_k = 0.0\n")
    scenario = load_spec_file(path)
    assert scenario.name == "tiny-v2" and len(scenario.data) == 2 * 96
    assert scenario.ev_sessions == ()
    assert scenario.start == pd.Timestamp("2024-05-06 00:00", tz=TZ)
    assert abs(scenario.data["outdoor_temp_c"].mean() - 30.0) < 3.0  # the nested table took effect
    via_registry = load_scenario(path)  # pems.scenario_files entry point
    pd.testing.assert_frame_equal(via_registry.data, scenario.data)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (("days = 2", "days = 0"), r"synthetic_scenario\.days = 0 is outside the allowed range \[1, 3660\]"),
        (("days = 2", "days = 2.5"), r"synthetic_scenario\.days = 2.5 must be an integer"),
        (("start = 2024-05-06", 'start = "2024-05-06"'),
         r"synthetic_scenario\.start = '2024-05-06' must be a date"),
        (("seed = 9", "seed = 9\ncolour = 3"),
         r"synthetic_scenario\.colour is not a known field; known: name"),
        (("seed = 9", "seed = 9\nstep_minutes = 7"), r"synthetic_scenario\.step_minutes = 7 is not one of"),
        (('name = "tiny-v2"', 'name = "tiny"'), r"synthetic_scenario\.name = 'tiny' must end with '-v2'"),
        (("seed = 9", "seed = 9\n[synthetic_scenario.tariff]\nvat_rate = 2"),
         r"synthetic_scenario\.tariff\.vat_rate = 2\.0 is outside the allowed range \[0\.0, 1\.0\]"),
        (("seed = 9", "seed = 9\n[synthetic_scenario.climate]\nmonthly_mean_temp_c = [1, 2]"),
         r"synthetic_scenario\.climate\.monthly_mean_temp_c = \(1\.0, 2\.0\) must be a list of 12 numbers"),
        (("seed = 9", "seed = 9\n[synthetic_scenario.ev]\ncapacity_kwh = true"),
         r"synthetic_scenario\.ev\.capacity_kwh = True must be a number"),
        (("seed = 9", "seed = 9\n[synthetic_scenario.location]\ntimezone = \"Mars/Olympus\""),
         r"synthetic_scenario\.location\.timezone = 'Mars/Olympus' is not a known IANA time zone"),
        (('name = "tiny-v2"\n', ""), r"synthetic_scenario\.name is required"),
        (("seed = 9", "seed = 9\n[synthetic_scenario.climate.regime]\nx = 1"),
         r"synthetic_scenario\.climate\.regime is not a known field"),
        (("seed = 9", "seed = 9\n[synthetic_scenario.comfort]\naway_start_hour = 25"),
         r"synthetic_scenario\.comfort\.away_start_hour = 25\.0 is outside the allowed range "
         r"\[0\.0, 24\.0\] h"),
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path, change, match):
    old, new = change
    assert old in MINIMAL
    path = tmp_path / "broken-spec.toml"
    path.write_text(MINIMAL.replace(old, new, 1))
    with pytest.raises(ScenarioError, match=r"broken-spec\.toml: " + match):
        load_spec_file(path)
    with pytest.raises(ScenarioError, match=match):
        load_spec(path)


def test_spec_that_is_not_valid_toml_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + "\nseed = = 3\n")
    with pytest.raises(ScenarioError, match=r"bad\.toml: not valid TOML"):
        load_spec_file(path)


def test_stray_top_level_keys_are_rejected(tmp_path):
    path = tmp_path / "stray.toml"
    path.write_text("days = 3\n" + MINIMAL)
    with pytest.raises(ScenarioError, match=r"stray\.toml: unexpected top-level key 'days'"):
        load_spec_file(path)


def test_year_prices_follow_the_bundled_data():
    scenario = load_scenario("year-v1")
    spot = scenario.data["export_price_per_kwh"] + bundled_spec("year-v1").tariff.export_fee_per_kwh
    days = raw_spot_by_day()
    daily_mean = spot.groupby(spot.index.date).mean()
    for day in (dt.date(2024, 1, 15), dt.date(2024, 7, 4), dt.date(2024, 12, 24)):
        assert daily_mean[day] == pytest.approx(np.mean(days[day]) / 1000.0)


def test_partial_nested_table_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "partial.toml"
    path.write_text(MINIMAL + "\n[synthetic_scenario.location]\naltitude_m = 300.0\n"
                    "\n[synthetic_scenario.load]\nannual_energy_kwh = 5000.0\n")
    spec = load_spec(path)
    assert spec.location.altitude_m == 300.0
    assert (spec.location.latitude_deg, spec.location.longitude_deg) == (50.08, 14.42)
    assert spec.location.timezone == TZ
    assert spec.load.annual_energy_kwh == 5000.0 and spec.load.noise_std == 0.35


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_named_scenario_passes_the_twin_conformance_check(name):
    check_scenario(load_scenario(name), reference_house())  # the twin's own checker
