"""The historical reader: mapping, time axes and DST, units, resampling, gap policy, errors naming file/column/row."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.historical.mapping import load_mapping
from scenarios.historical.reader import read_historical
from scenarios.historical.scenario import build_scenario, load_mapping_file
from twin.errors import ScenarioError
from twin.registry import load_scenario


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def mapping_text(columns: str, source: str = 'time_column = "t"', top: str = "", extra: str = "") -> str:
    return f"""
    [historical]
    timezone = "Europe/Paris"
    step_minutes = 30
    {top}

    [[historical.sources]]
    file = "data.csv"
    {source}

    [historical.sources.columns]
    {columns}
    {extra}
    """


def csv(tmp_path: Path, times: list[str], **columns: list) -> Path:
    frame = pd.DataFrame({"t": times, **columns})
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def utc_times(n: int, step: str = "30min", start: str = "2024-03-01T00:00:00+00:00") -> list[str]:
    return [t.isoformat() for t in pd.date_range(start, periods=n, freq=step)]


def test_watts_in_utc_become_kw_on_the_local_grid(tmp_path):
    csv(tmp_path, utc_times(6), load=[100, 200, 300, 400, 500, 600])
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "W" }')))
    frame, quality = read_historical(mapping)
    assert str(frame.index.tz) == "Europe/Paris"
    assert frame.index[0] == pd.Timestamp("2024-03-01T00:00:00+00:00")
    np.testing.assert_allclose(frame["base_load_kw"], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    column = quality.column("base_load_kw")
    assert column.coverage == 1.0 and column.gaps == 0
    assert any("base_load_kw" in line for line in quality.lines())


def test_energy_per_interval_and_cumulative_meters_become_mean_power(tmp_path):
    # 250 Wh in 30 min = 0.5 kW; a meter rising by 0.5 kWh per 30 min = 1 kW.
    csv(tmp_path, utc_times(4), energy=[250, 250, 500, 0], meter=[10.0, 10.5, 11.0, 11.5])
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text(
        'base_load_kw = { column = "energy", unit = "Wh" }\n    pv_power_kw = { column = "meter", unit = "kWh_meter" }',
        top='[historical.gaps]\n    interpolate_max_minutes = 60')))
    frame, _ = read_historical(mapping)
    np.testing.assert_allclose(frame["base_load_kw"], [0.5, 0.5, 1.0, 0.0])
    # The last meter interval has no next reading: a one-step gap, held from its neighbour.
    np.testing.assert_allclose(frame["pv_power_kw"], [1.0, 1.0, 1.0, 1.0])


def test_a_meter_going_backwards_names_the_line(tmp_path):
    csv(tmp_path, utc_times(4), meter=[10.0, 10.5, 9.0, 9.5])
    columns = 'pv_power_kw = { column = "meter", unit = "kWh_meter" }'
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text(columns)))
    with pytest.raises(ScenarioError, match=r"data.csv: column 'meter' line 4: meter reading decreases"):
        read_historical(mapping)


@pytest.mark.parametrize(("times", "message"), [
    (["2024-03-01T00:00:00Z", "2024-03-01T00:30:00Z", "2024-03-01T00:30:00Z"], r"column 't' line 4: duplicated"),
    (["2024-03-01T00:00:00Z", "2024-03-01T01:00:00Z", "2024-03-01T00:30:00Z"], r"column 't' line 4: .* earlier"),
    (["2024-03-01T00:00:00Z", "2024-03-01T00:30:00Z", "2024-03-01T01:00:00Z", "2024-03-01T01:15:00Z"],
     r"line 5: .* off the file's 30-minute grid"),
    (["2024-03-01T00:00:00Z", "yesterday", "2024-03-01T01:00:00Z"], r"column 't' line 3: 'yesterday' is not a time"),
])
def test_bad_timestamps_name_file_column_and_line(tmp_path, times, message):
    csv(tmp_path, times, load=list(range(len(times))))
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "W" }')))
    with pytest.raises(ScenarioError, match=message):
        read_historical(mapping)


def test_a_value_that_is_not_a_number_names_its_line(tmp_path):
    csv(tmp_path, utc_times(3), load=["1", "lots", "3"])
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "W" }')))
    with pytest.raises(ScenarioError, match=r"data.csv: column 'load' line 3: 'lots' is not a number"):
        read_historical(mapping)


def test_a_missing_column_names_the_file_and_lists_what_is_there(tmp_path):
    csv(tmp_path, utc_times(3), load=[1, 2, 3])
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "Load", unit = "W" }')))
    with pytest.raises(ScenarioError, match=r"data.csv: column 'Load' not found; the file has \['t', 'load'\]"):
        read_historical(mapping)


@pytest.mark.parametrize(("columns", "message"), [
    ('base_load_kw = { column = "load", unit = "kWp" }', r"columns.base_load_kw.unit = 'kWp' is not a unit"),
    ('base_load = { column = "load", unit = "W" }', r"does not end in a known unit suffix"),
    ('base_load_kw = { column = "load", unit = "W", colour = "red" }', r"base_load_kw.colour is not a known key"),
    ('base_load_kw = { column = "load", unit = "W", missing = "guess" }', r"missing = 'guess' is not one of"),
])
def test_mapping_errors_name_the_key(tmp_path, columns, message):
    path = write(tmp_path, "m.toml", mapping_text(columns))
    with pytest.raises(ScenarioError, match=message):
        load_mapping(path)
    assert str(path) in str(pytest.raises(ScenarioError, load_mapping, path).value)


def naive_local(start: str, n: int, step: str = "30min") -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M") for t in pd.date_range(start, periods=n, freq=step)]


def test_naive_local_times_in_a_skipped_hour_are_an_error_unless_dropped(tmp_path):
    # Europe/Paris skips 02:00-03:00 on 2024-03-31; a logger writing wall-clock times has rows there.
    times = naive_local("2024-03-31 01:00", 6)  # 01:00 .. 03:30, 02:00 and 02:30 do not exist
    csv(tmp_path, times, load=[1000, 1000, 7, 7, 1000, 1000])
    source = 'time_column = "t"\n    timezone = "Europe/Paris"'
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "W" }',
                                                                  source=source)))
    with pytest.raises(ScenarioError, match=r"column 't' line 4: local time 2024-03-31 02:00:00 is non-existent "
                                            r".* \(nonexistent = \"drop\"\)"):
        read_historical(mapping)
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "W" }',
                                                                  source=source + '\n    nonexistent = "drop"')))
    frame, quality = read_historical(mapping)
    assert (frame["base_load_kw"] == 1.0).all(), "the rows at non-existent times are gone, nothing else"
    assert len(quality.sources[0].dropped_rows) == 2


def test_naive_local_times_in_a_repeated_hour_follow_the_ambiguous_policy(tmp_path):
    # 2024-10-27 02:00-03:00 happens twice in Europe/Paris; a logger wrote both, in order.
    times = ["2024-10-27 01:30", "2024-10-27 02:00", "2024-10-27 02:30", "2024-10-27 02:00", "2024-10-27 02:30",
             "2024-10-27 03:00"]
    csv(tmp_path, times, load=[1, 2, 3, 4, 5, 6])
    source = 'time_column = "t"\n    timezone = "Europe/Paris"'
    path = write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "kW" }', source=source))
    with pytest.raises(ScenarioError, match=r"ambiguous"):
        read_historical(load_mapping(path))
    path = write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "kW" }',
                                                  source=source + '\n    ambiguous = "infer"'))
    frame, _ = read_historical(load_mapping(path))
    assert list(frame["base_load_kw"]) == [1, 2, 3, 4, 5, 6]
    assert frame.index[1].utcoffset() == pd.Timedelta(hours=2) and frame.index[3].utcoffset() == pd.Timedelta(hours=1)


def test_interval_end_labels_shift_back_one_interval(tmp_path):
    csv(tmp_path, utc_times(3, start="2024-03-01T00:30:00+00:00"), load=[1, 2, 3])
    mapping = load_mapping(write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "kW" }',
                                                                  source='time_column = "t"\n    label = "end"')))
    frame, _ = read_historical(mapping)
    assert frame.index[0] == pd.Timestamp("2024-03-01T00:00:00Z")


def test_finer_data_is_averaged_and_coarser_data_held(tmp_path):
    csv(tmp_path, utc_times(6, "10min"), load=[1, 2, 3, 4, 5, 6])
    frame, _ = read_historical(load_mapping(write(tmp_path, "m.toml", mapping_text(
        'base_load_kw = { column = "load", unit = "kW" }'))))
    np.testing.assert_allclose(frame["base_load_kw"], [2.0, 5.0])
    csv(tmp_path, utc_times(2, "1h"), load=[1, 3])
    frame, _ = read_historical(load_mapping(write(tmp_path, "m.toml", mapping_text(
        'base_load_kw = { column = "load", unit = "kW" }'))))
    np.testing.assert_allclose(frame["base_load_kw"], [1.0, 1.0, 3.0, 3.0])


def test_gaps_are_interpolated_filled_from_another_week_or_refused(tmp_path):
    n = 48 * 15  # 15 days of 30-min data
    t = np.arange(n)
    load = 1.0 + (t % 48) / 48.0  # a daily ramp
    load[100] = np.nan  # 30 min: interpolated
    load[400:410] = np.nan  # 5 h: from the same time a week before or after
    csv(tmp_path, utc_times(n), load=load)
    top = "[historical.gaps]\n    interpolate_max_minutes = 60\n    fill_max_hours = 6"
    frame, quality = read_historical(load_mapping(write(tmp_path, "m.toml", mapping_text(
        'base_load_kw = { column = "load", unit = "kW" }', top=top))))
    values = frame["base_load_kw"].to_numpy()
    assert values[100] == pytest.approx(0.5 * (load[99] + load[101]))
    np.testing.assert_allclose(values[400:410], load[400 - 336:410 - 336])
    q = quality.column("base_load_kw")
    assert (q.interpolated, q.week_filled, q.gaps, q.longest_gap_steps) == (1, 10, 2, 10)
    load[500:520] = np.nan  # 10 h: more than the policy allows
    csv(tmp_path, utc_times(n), load=load)
    with pytest.raises(ScenarioError, match=r"column 'load' \(base_load_kw\): gap of 20 steps \(10 h\) from "
                                            r"2024-03-11 10:00:00\+00:00 \(data.csv line 502\)"):
        read_historical(load_mapping(write(tmp_path, "m.toml", mapping_text(
            'base_load_kw = { column = "load", unit = "kW" }', top=top))))


def test_empty_pv_cells_read_as_zero_only_when_the_sun_is_down(tmp_path):
    times = utc_times(48, start="2024-06-21T00:00:00+00:00")
    pv = np.full(48, np.nan)
    pv[20] = 1000.0  # 10:00 UTC
    csv(tmp_path, times, pv=pv)
    top = ("[historical.location]\n    latitude_deg = 48.8\n    longitude_deg = 2.3\n    timezone = \"Europe/Paris\"\n"
           "    [historical.gaps]\n    fill_max_hours = 0")
    path = write(tmp_path, "m.toml", mapping_text(
        'pv_power_kw = { column = "pv", unit = "W", missing = "zero_when_dark" }', top=top))
    with pytest.raises(ScenarioError, match="gap of .* steps"):  # empty daytime cells are still gaps
        read_historical(load_mapping(path))
    pv[8:40] = 500.0  # daylight 04:00-20:00 UTC measured
    csv(tmp_path, times, pv=pv)
    frame, quality = read_historical(load_mapping(path))
    assert frame["pv_power_kw"].iloc[:8].eq(0).all() and frame["pv_power_kw"].iloc[44:].eq(0).all()
    assert quality.column("pv_power_kw").zero_filled == 16


def test_parquet_sources_and_the_data_placeholder(tmp_path):
    frame = pd.DataFrame({"t": pd.date_range("2024-03-01", periods=4, freq="30min", tz="UTC"), "load": [1., 2, 3, 4]})
    data = tmp_path / "recorded.parquet"
    frame.to_parquet(data)
    text = mapping_text('base_load_kw = { column = "load", unit = "kW" }').replace('"data.csv"', '"@data"')
    mapping = load_mapping(write(tmp_path, "m.toml", text))
    with pytest.raises(ScenarioError, match="give the data file"):
        read_historical(mapping)
    out, _ = read_historical(mapping, data)
    np.testing.assert_allclose(out["base_load_kw"], [1, 2, 3, 4])


SCENARIO_EXTRA = """
    [historical.constants]
    export_price_per_kwh = 0.05
    import_price_per_kwh = 0.25

    [historical.climatology]
    monthly_mean_c = [0, 1, 5, 9, 14, 17, 19, 19, 15, 10, 5, 1]

    [historical.comfort_schedule]
"""


def test_a_mapping_builds_a_scenario_that_pems_loads_by_path(tmp_path):
    n = 48 * 3
    csv(tmp_path, utc_times(n), load=np.full(n, 500.0), pv=np.where(np.arange(n) % 48 < 24, 0.0, 800.0))
    top = 'name = "tiny-v1"'
    columns = ('base_load_kw = { column = "load", unit = "W" }\n'
               '    pv_power_kw = { column = "pv", unit = "W" }')
    path = write(tmp_path, "tiny.toml", mapping_text(columns, top=top, extra=SCENARIO_EXTRA))
    scenario, quality = build_scenario(load_mapping(path))
    assert scenario.name == "tiny-v1" and len(scenario.data) == n
    assert set(scenario.data.columns) == {"base_load_kw", "pv_power_kw", "outdoor_temp_c", "import_price_per_kwh",
                                          "export_price_per_kwh", "comfort_mode"}
    assert "LeadTimeErrorForecasts" in scenario.metadata["forecasts_given"]
    assert '"base_load_kw"' in scenario.metadata["data_quality"]
    again = load_scenario(str(path))  # through the pems.scenario_files entry point
    pd.testing.assert_frame_equal(again.data, scenario.data)
    assert load_mapping_file(tmp_path / "data.csv") is None, "not a mapping: another loader's turn"


def test_a_scenario_needs_its_required_columns_and_a_versioned_name(tmp_path):
    csv(tmp_path, utc_times(4), load=[1, 2, 3, 4])
    path = write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "W" }',
                                                  top='name = "tiny-v1"'))
    with pytest.raises(ScenarioError, match=r"a scenario needs column\(s\) \['outdoor_temp_c'"):
        build_scenario(load_mapping(path))
    path = write(tmp_path, "m.toml", mapping_text('base_load_kw = { column = "load", unit = "W" }',
                                                  top='name = "tiny"', extra=SCENARIO_EXTRA))
    with pytest.raises(ScenarioError, match=r"name = 'tiny' must end with '-v1'"):
        build_scenario(load_mapping(path))
