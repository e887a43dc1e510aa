"""The bundled historical scenarios: what they hold, how honestly they forecast, provenance alongside."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.historical.catalog import bundled_mapping, bundled_mappings
from scenarios.historical.scenario import build_scenario
from twin.config import reference_house
from twin.house import SimHouse


@pytest.fixture(scope="module")
def fr_home():
    return build_scenario(bundled_mapping("fr-home-2024-v1"))


@pytest.fixture(scope="module")
def citylearn():
    return build_scenario(bundled_mapping("citylearn-fontana-b1-v1"))


def test_every_bundled_excerpt_travels_with_provenance_and_licence():
    for mapping in bundled_mappings():
        folders = {mapping.resolve(s.file, None).parent for s in mapping.sources}
        for folder in folders:
            names = {p.name for p in folder.iterdir()}
            assert "PROVENANCE.md" in names, folder
            assert any(n.startswith("LICENSE") for n in names), folder
        assert mapping.provenance and mapping.licence


def test_fr_home_covers_march_to_december_2024_in_paris_time(fr_home):
    scenario, quality = fr_home
    assert scenario.index[0] == pd.Timestamp("2024-03-01", tz="Europe/Paris")
    assert scenario.end == pd.Timestamp("2025-01-01", tz="Europe/Paris")
    assert scenario.step_s == 1800
    assert 4.3 < scenario.data["pv_power_kw"].max() < 4.5  # the recorded peak, W -> kW
    load = quality.column("base_load_kw")
    assert load.coverage > 0.97 and load.week_filled > 0, "the recorded gaps were filled and reported"
    assert json.loads(scenario.metadata["data_quality"])["columns"][0]["name"] == "base_load_kw"


def test_fr_home_issues_the_archived_pv_forecast_where_one_was_recorded(fr_home):
    scenario, _ = fr_home
    archived = pd.read_csv(bundled_mapping("fr-home-2024-v1").resolve(
        "../data/fr_home_2024/emhass_fr_load_pv_2024-03_2024-12_30min.csv", None), index_col=0, parse_dates=True)
    archived = archived["sensor.p_pv_forecast"].clip(lower=0) / 1000.0
    house = SimHouse(reference_house(), scenario)
    step = int(np.flatnonzero(scenario.index == pd.Timestamp("2024-06-15 12:00", tz="Europe/Paris"))[0])
    issued = scenario.forecasts.issue(house.exo.series, step, 96)
    expected = archived.reindex(scenario.index[step:step + 96]).to_numpy()
    recorded = np.isfinite(expected)
    assert recorded.sum() > 10 and (~recorded).sum() > 10
    np.testing.assert_allclose(issued["pv_power_kw"][recorded], expected[recorded])
    base = scenario.forecasts.base.issue(house.exo.series, step, 96)
    np.testing.assert_allclose(issued["pv_power_kw"][~recorded], base["pv_power_kw"][~recorded])
    actual = house.exo.series["pv_power_kw"][step:step + 96]
    assert not np.allclose(issued["pv_power_kw"], actual), "issued forecasts are not the recorded future"


def test_citylearn_reads_24_rows_per_local_day_across_both_dst_changes(citylearn):
    scenario, quality = citylearn
    assert len(scenario.index) == 8760 and scenario.step_s == 3600
    local_days = scenario.index.tz_convert("America/Los_Angeles").normalize()
    steps_per_day = pd.Series(1, index=local_days).groupby(level=0).sum()
    assert steps_per_day[pd.Timestamp("2016-11-06", tz="America/Los_Angeles")] == 25
    assert steps_per_day[pd.Timestamp("2017-03-12", tz="America/Los_Angeles")] == 23
    building = quality.sources[0]
    assert len(building.dropped_rows) == 1 and building.missing_rows == 1
    assert quality.column("base_load_kw").interpolated == 1
    assert scenario.metadata["currency"] == "USD"
    # The TOU peak (0.40-0.54 USD/kWh) is 16:00-21:00 local wall-clock time, summer and winter.
    price = scenario.data["import_price_per_kwh"]
    hours = price.index.tz_convert("America/Los_Angeles").hour
    assert price[(hours >= 16) & (hours < 21)].min() >= 0.40 and price[(hours < 16) | (hours >= 21)].max() <= 0.22


def test_citylearn_house_file_has_no_rooms():
    from twin.config import load_house

    path = Path(str(resources.files("scenarios.historical").joinpath("houses/citylearn-fontana-b1.toml")))
    house = load_house(path)
    assert house.rooms == () and house.pv_peak_kw == 4.0 and house.battery.capacity_kwh == 6.4
